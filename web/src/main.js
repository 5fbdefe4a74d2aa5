// The Clipstream studio: one page, a view per location hash. Every view
// reads the server's APIs as they are (the README's Project API, chunked
// uploads, render requests and status, /metrics); nothing is cached here
// beyond the open project and the form's values.

import * as api from "./api.js";
import { h, bytes, when, toast, confirmDialog } from "./dom.js";
import { createEditor, setText, showServerError, clearErrors } from "./editor.js";
import { uploadFiles, pendingUploads, forgetUpload } from "./uploads.js";
import { placeholdersOf, mergeDefaults, timelineView } from "./template.js";
import { videoSnippet, emailSnippet } from "./snippets.js";
import { parseMetrics } from "./metrics.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

const PAGES = [
  ["projects", "Projects"],
  ["assets", "Assets"],
  ["templates", "Templates"],
  ["preview", "Preview"],
  ["renders", "Renders"],
  ["server", "Server"],
];

// What the pages share while the tab lives: the template being edited
// and the values typed into its placeholders, by movie name.
const shared = { movie: null, params: {} };
// What the view on screen holds (timers, blob: URLs, the editor), let go
// of when another replaces it.
let leaving = [];

/** Runs `fn` when the view on screen is replaced. */
function onLeave(fn) {
  leaving.push(fn);
}

function project() {
  const raw = sessionStorage.getItem("clipstream.project");
  try {
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function setProject(p) {
  if (p) sessionStorage.setItem("clipstream.project", JSON.stringify({ uid: p.uid, name: p.name }));
  else sessionStorage.removeItem("clipstream.project");
}

function go(page) {
  // Setting the hash it already has fires no hashchange: route at once.
  if (location.hash === "#/" + page) route();
  else location.hash = "#/" + page;
}

/**
 * `fn` every `ms` while the view whose root is `root` is on screen: a
 * timer started after an await, once the view was replaced, stops at its
 * first tick.
 */
function every(root, ms, fn) {
  const id = setInterval(() => {
    if (root.isConnected) fn();
    else clearInterval(id);
  }, ms);
  onLeave(() => clearInterval(id));
  return id;
}

/** A blob: URL given back when the view goes. */
function viewBlob(url) {
  onLeave(() => URL.revokeObjectURL(url));
  return url;
}

function errorBox(err) {
  const text = err instanceof api.ApiError ? err.describe() : String(err && err.message ? err.message : err);
  return h("p", { class: "error", role: "alert" }, text);
}

function renderNav(current) {
  nav.replaceChildren();
  nav.hidden = !api.signedIn();
  if (!api.signedIn()) {
    who.replaceChildren();
    return;
  }
  const p = project();
  for (const [id, label] of PAGES) {
    const needsProject = id !== "projects" && id !== "server";
    if (needsProject && !p) continue;
    nav.append(h("a", { href: "#/" + id, id: "nav-" + id, "aria-current": id === current ? "page" : null }, label));
  }
  who.replaceChildren(
    p ? h("span", { class: "muted", id: "current-project" }, p.name) : "",
    h("span", { class: "key" }, api.keyId()),
    h(
      "button",
      {
        type: "button",
        id: "signout",
        onclick: signOut,
      },
      "Sign out",
    ),
  );
}

function signOut() {
  api.signOut();
  shared.movie = null;
  shared.params = {};
  go("signin");
}

api.onUnauthorized(() => {
  if (api.signedIn()) signOut();
});

async function route() {
  const done = leaving;
  leaving = [];
  for (const fn of done) {
    try {
      fn();
    } catch {
      /* the next view does not depend on the last one's clean-up */
    }
  }
  let page = (location.hash.match(/^#\/(\w+)/) || [])[1] || "projects";
  if (!api.signedIn()) page = "signin";
  else if (page === "signin") page = "projects";
  const needsProject = !["signin", "projects", "server"].includes(page);
  if (needsProject && !project()) page = "projects";
  renderNav(page);
  const view = VIEWS[page] || VIEWS.projects;
  const root = h("section", { class: "page", id: "page-" + page, "aria-busy": "true" });
  main.replaceChildren(root);
  try {
    await view(root);
  } catch (err) {
    // A 401 signed out already (api.onUnauthorized).
    if (err instanceof api.ApiError && err.status === 401) return;
    root.append(errorBox(err));
  } finally {
    root.setAttribute("aria-busy", "false");
  }
}

// ---- sign in ---------------------------------------------------------

async function signinView(root) {
  const key = h("input", { id: "key", name: "key", autocomplete: "username", required: true, spellcheck: "false" });
  const secret = h("input", { id: "secret", name: "secret", type: "password", autocomplete: "off", required: true });
  const out = h("div", { id: "signin-error" });
  const form = h(
    "form",
    { class: "card narrow", id: "signin-form" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "With an API key and its secret (", h("code", {}, "clipstream keys create"), "). They stay in this tab only."),
    h("label", { for: "key" }, "Key"),
    key,
    h("label", { for: "secret" }, "Secret"),
    secret,
    h("button", { type: "submit", id: "signin", class: "primary" }, "Sign in"),
    out,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.replaceChildren();
    try {
      await api.signIn(key.value.trim(), secret.value);
      go("projects");
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  root.append(form);
  key.focus();
}

// ---- projects --------------------------------------------------------

async function projectsView(root) {
  const name = h("input", { id: "project-name", required: true, placeholder: "welcome", "aria-label": "New project's name" });
  const out = h("div");
  const form = h("form", { class: "row" }, name, h("button", { type: "submit", id: "create-project", class: "primary" }, "Create project"));
  const list = h("ul", { class: "list", id: "projects" });
  root.append(h("h1", {}, "Projects"), form, out, list);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.replaceChildren();
    try {
      const p = await api.call("POST", "/v1/project/" + api.enc(name.value.trim()));
      setProject(p);
      toast(`Project ${p.name} created`);
      go("assets");
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  const { projects } = await api.call("GET", "/v1/list/project");
  const current = project();
  if (projects.length === 0) list.append(h("li", { class: "muted" }, "No projects yet: create one above."));
  for (const p of projects) {
    list.append(
      h(
        "li",
        { "data-uid": p.uid, class: current && current.uid === p.uid ? "current" : "" },
        h("button", { type: "button", class: "link open-project", onclick: () => { setProject(p); go("templates"); } }, p.name),
        h("span", { class: "muted mono" }, p.uid),
        h("span", { class: "muted" }, when(p.created)),
        h("button", { type: "button", class: "danger delete-project", onclick: () => deleteProject(p) }, "Delete"),
      ),
    );
  }
}

async function deleteProject(p) {
  // Counted first so the confirmation names what goes.
  let assets = [];
  let movies = [];
  let renders = 0;
  try {
    [assets, movies, renders] = await Promise.all([
      api.call("GET", `/v1/list/data/${p.uid}`).then((r) => r.assets),
      api.call("GET", `/v1/list/sdl/${p.uid}`).then((r) => r.movies),
      // The count only: one row, not every token.
      api.call("GET", `/v1/list/render/${p.uid}?limit=1`).then((r) => r.count),
    ]);
  } catch (err) {
    toast(err.message);
    return;
  }
  const ok = await confirmDialog(
    `Delete project ${p.name}?`,
    [
      `This deletes the project ${p.name} (${p.uid}) with its ${assets.length} asset(s), ${movies.length} template(s) and ${renders} render token(s).`,
      "Videos already sent out with its tokens stop playing. This cannot be undone.",
    ],
    `Delete ${p.name}`,
  );
  if (!ok) return;
  try {
    await api.call("DELETE", "/v1/project/" + api.enc(p.uid));
    if (project() && project().uid === p.uid) setProject(null);
    toast(`Project ${p.name} deleted`);
    route();
  } catch (err) {
    toast(err.message);
  }
}

// ---- assets ----------------------------------------------------------

async function assetsView(root) {
  const p = project();
  const input = h("input", { type: "file", id: "files", multiple: true, class: "visually-hidden" });
  const drop = h(
    "label",
    { class: "drop", for: "files", id: "drop", tabindex: "0" },
    h("strong", {}, "Drop files here"),
    " or press Enter to choose. Large files go in 1 MiB chunks and resume after a reload (drop the same file again).",
  );
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  const queue = h("ul", { class: "uploads", id: "uploads" });
  const table = h("div", { id: "assets" });
  root.append(h("h1", {}, "Assets"), input, drop, queue, table);
  const start = (files) =>
    uploadFiles(p.uid, [...files], queue, () => {
      // A resumed upload that finished is no longer interrupted.
      const left = new Set(pendingUploads(p.uid).map((u) => u.id));
      for (const row of queue.querySelectorAll(".interrupted")) if (!left.has(row.dataset.id)) row.remove();
      return listAssets(p, table);
    });
  input.addEventListener("change", () => {
    start(input.files);
    input.value = "";
  });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    start(e.dataTransfer.files);
  });
  const pending = pendingUploads(p.uid);
  if (pending.length) {
    queue.append(
      ...pending.map((u) =>
        h("li", { class: "upload interrupted", "data-id": u.id }, h("span", {}, u.name), h("span", { class: "muted" }, `interrupted at ${u.received}/${u.chunk_count} chunks: drop ${u.name} again to resume`),
          h("button", { type: "button", class: "small", onclick: (e) => { forgetUpload(u); e.target.closest("li").remove(); } }, "Forget")),
      ),
    );
  }
  await listAssets(p, table);
}

async function listAssets(p, table) {
  const { assets } = await api.call("GET", `/v1/list/data/${p.uid}`);
  const rows = assets.map((a) => {
    const preview = h("div", { class: "thumb" });
    const path = `/v1/data/${p.uid}/${api.enc(a.name)}`;
    if (a.content_type.startsWith("image/") && a.size <= 4 << 20) {
      api.blobUrl(path).then((u) => preview.append(h("img", { src: viewBlob(u), alt: "" }))).catch(() => {});
    } else if (a.content_type.startsWith("video/") || a.content_type.startsWith("audio/")) {
      // Media is fetched only when asked: it can be large.
      preview.append(
        h("button", {
          type: "button",
          class: "small",
          onclick: async (e) => {
            e.target.disabled = true;
            try {
              const u = viewBlob(await api.blobUrl(path));
              const kind = a.content_type.startsWith("video/") ? "video" : "audio";
              preview.replaceChildren(h(kind, { src: u, controls: true, muted: true, preload: "metadata" }));
            } catch (err) {
              preview.replaceChildren(errorBox(err));
            }
          },
        }, "Preview"),
      );
    }
    return h(
      "tr",
      { "data-name": a.name },
      h("td", {}, preview),
      h("td", { class: "name" }, a.name),
      h("td", {}, a.content_type),
      h("td", { class: "num" }, bytes(a.size)),
      h("td", {}, when(a.modified)),
      h("td", {}, h("button", { type: "button", class: "danger", onclick: () => deleteAsset(p, a, table) }, "Delete")),
    );
  });
  table.replaceChildren(
    assets.length === 0
      ? h("p", { class: "muted" }, "No assets yet.")
      : h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Preview", "Name", "Type", "Size", "Modified", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows),
        ),
  );
}

async function deleteAsset(p, a, table) {
  const ok = await confirmDialog(`Delete ${a.name}?`, [`The asset ${a.name} (${bytes(a.size)}) goes from ${p.name}; templates that use it fail to render until it is back.`], `Delete ${a.name}`);
  if (!ok) return;
  try {
    await api.call("DELETE", `/v1/data/${p.uid}/${api.enc(a.name)}`);
    await listAssets(p, table);
  } catch (err) {
    toast(err.message);
  }
}

// ---- templates -------------------------------------------------------

const STARTER = `{
  "timeline": {
    "background": "#101820",
    "tracks": [
      { "clips": [
        { "asset": { "type": "title", "text": "Hello {{NAME}}", "style": "minimal" },
          "start": 0, "length": 4, "transition": { "in": "fade" } }
      ] }
    ]
  },
  "output": { "format": "mp4", "resolution": "sd" },
  "merge": [{ "find": "NAME", "replace": "there" }]
}
`;

function paramsForm(text, movie) {
  const names = placeholdersOf(text);
  const defaults = mergeDefaults(text);
  // Stored under the movie's name only once a value is typed: the form is
  // drawn again at each keystroke of a new template's name.
  const values = shared.params[movie] || {};
  const box = h("fieldset", { class: "params", id: "params" }, h("legend", {}, "Placeholders"));
  if (names.length === 0) box.append(h("p", { class: "muted" }, "This template has no {{placeholders}}."));
  for (const n of names) {
    const value = values[n] !== undefined ? values[n] : defaults[n];
    const shown = value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
    const input = h("input", { id: "param-" + n, name: n, value: shown });
    input.addEventListener("input", () => {
      shared.params[movie] = values;
      // A merge default that was a number or boolean stays one.
      if (defaults[n] !== undefined && typeof defaults[n] !== "string") {
        try {
          values[n] = JSON.parse(input.value);
          return;
        } catch {
          /* typed text: sent as text */
        }
      }
      values[n] = input.value;
    });
    box.append(h("label", { for: "param-" + n }, n), input);
  }
  return box;
}

function paramsOf(text, movie) {
  const values = shared.params[movie] || {};
  const defaults = mergeDefaults(text);
  const out = {};
  for (const n of placeholdersOf(text)) {
    const v = values[n] !== undefined ? values[n] : defaults[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}

async function templatesView(root) {
  const p = project();
  const { movies } = await api.call("GET", `/v1/list/sdl/${p.uid}`);
  const picker = h("ul", { class: "list compact", id: "movies" });
  const name = h("input", { id: "template-name", required: true, "aria-label": "Template name", placeholder: "welcome" });
  const status = h("div", { id: "editor-status", "aria-live": "polite" });
  const editorBox = h("div", { class: "editor", id: "editor" });
  const timeline = h("div", { id: "timeline" });
  const form = h("div", { id: "params-box" });
  let text = STARTER;
  const refresh = () => {
    timeline.replaceChildren(timelineView(text));
    form.replaceChildren(paramsForm(text, name.value || "untitled"));
  };
  const view = createEditor(editorBox, text, (t) => {
    text = t;
    refresh();
  });
  onLeave(() => view.destroy());
  const open = async (movieName) => {
    status.replaceChildren();
    clearErrors(view);
    let body;
    try {
      body = await api.text(`/v1/sdl/${p.uid}/${api.enc(movieName)}`);
    } catch (err) {
      status.append(errorBox(err));
      return;
    }
    name.value = movieName;
    shared.movie = movieName;
    setText(view, body);
    refresh();
  };
  const save = async () => {
    status.replaceChildren();
    clearErrors(view);
    const movieName = name.value.trim();
    if (!movieName) {
      status.append(h("p", { class: "error", role: "alert" }, "Give the template a name first."));
      name.focus();
      return false;
    }
    try {
      const r = await api.call("PUT", `/v1/sdl/${p.uid}/${api.enc(movieName)}`, { body: text, headers: { "Content-Type": "application/json" } });
      shared.movie = movieName;
      status.append(h("p", { class: "ok", id: "saved" }, `Saved ${r.name}; placeholders: ${r.placeholders.join(", ") || "none"}.`));
      if (!movies.some((m) => m.name === movieName)) {
        movies.push({ name: movieName });
        listMovies();
      }
      return true;
    } catch (err) {
      if (err instanceof api.ApiError && err.body) {
        showServerError(view, err.body);
        status.append(
          h("p", { class: "error", role: "alert", id: "editor-error", "data-path": err.path || "" }, err.path ? h("code", {}, err.path) : "", err.path ? ": " : "", err.message),
        );
      } else {
        status.append(errorBox(err));
      }
      return false;
    }
  };
  const listMovies = () => {
    picker.replaceChildren(
      ...movies.map((m) =>
        h("li", {}, h("button", { type: "button", class: "link", "data-movie": m.name, onclick: () => open(m.name) }, m.name),
          h("button", { type: "button", class: "danger small", onclick: () => deleteMovie(p, m.name) }, "Delete")),
      ),
    );
    if (movies.length === 0) picker.append(h("li", { class: "muted" }, "No templates yet."));
  };
  listMovies();
  name.addEventListener("input", refresh);
  root.append(
    h("h1", {}, "Templates"),
    h(
      "div",
      { class: "split" },
      h("aside", {}, h("h2", {}, "Stored"), picker, h("button", { type: "button", id: "new-template", onclick: () => { name.value = ""; setText(view, STARTER); clearErrors(view); status.replaceChildren(); name.focus(); } }, "New template")),
      h(
        "div",
        { class: "grow" },
        h("div", { class: "row" }, name, h("button", { type: "button", id: "save", class: "primary", onclick: save }, "Save"),
          h("button", { type: "button", id: "to-preview", onclick: async () => { if (await save()) go("preview"); } }, "Save and preview")),
        status,
        editorBox,
        h("h2", {}, "Timeline"),
        timeline,
        form,
      ),
    ),
  );
  if (shared.movie && movies.some((m) => m.name === shared.movie)) await open(shared.movie);
  else if (movies.length) await open(movies[0].name);
  refresh();
}

async function deleteMovie(p, movieName) {
  const ok = await confirmDialog(`Delete template ${movieName}?`, [`The template ${movieName} goes from ${p.name}; its render tokens stop rendering.`], `Delete ${movieName}`);
  if (!ok) return;
  try {
    await api.call("DELETE", `/v1/sdl/${p.uid}/${api.enc(movieName)}`);
    if (shared.movie === movieName) shared.movie = null;
    route();
  } catch (err) {
    toast(err.message);
  }
}

// ---- preview ---------------------------------------------------------

const FORMATS = {
  mp4: { ext: "mp4", status: "mp4", kind: "video" },
  webm: { ext: "webm", status: "webm", kind: "video" },
  gif: { ext: "gif", status: "gif", kind: "img" },
  poster: { ext: "-poster.jpg", status: "poster", kind: "img" },
  thumbnail: { ext: "-thumb.jpg", status: "thumb", kind: "img" },
};

function outputUrl(token, format) {
  const f = FORMATS[format];
  return f.ext.startsWith("-") ? `/render/${token}${f.ext}` : `/render/${token}.${f.ext}`;
}

function statusLine(s) {
  if (!s.timings) return "not rendered yet";
  const t = s.timings;
  const parts = [];
  if (t.created && t.started) parts.push(`queued ${Math.max(0, t.started - t.created)} s`);
  if (t.render_secs !== null && t.render_secs !== undefined) parts.push(`rendered in ${t.render_secs.toFixed(2)} s`);
  else if (t.started) parts.push(`rendering for ${Math.max(0, Math.round(Date.now() / 1000) - t.started)} s`);
  if (s.size) parts.push(bytes(s.size));
  return parts.join(" · ");
}

async function previewView(root) {
  const p = project();
  const { movies } = await api.call("GET", `/v1/list/sdl/${p.uid}`);
  if (movies.length === 0) {
    root.append(h("h1", {}, "Preview"), h("p", {}, "No templates yet: ", h("a", { href: "#/templates" }, "write one"), " first."));
    return;
  }
  const select = h("select", { id: "movie" }, movies.map((m) => h("option", { value: m.name }, m.name)));
  select.value = shared.movie && movies.some((m) => m.name === shared.movie) ? shared.movie : movies[0].name;
  const format = h("select", { id: "format" }, Object.keys(FORMATS).map((f) => h("option", { value: f }, f)));
  const formBox = h("div");
  const stage = h("div", { class: "stage", id: "stage" });
  const state = h("span", { id: "state" }, "–");
  const progress = h("progress", { id: "progress", max: 100, value: 0 });
  const timings = h("span", { id: "timings", class: "muted" });
  const tokenBox = h("div", { id: "token" });
  const out = h("div", { id: "preview-error" });
  let text = "";
  const load = async () => {
    shared.movie = select.value;
    try {
      text = await api.text(`/v1/sdl/${p.uid}/${api.enc(select.value)}`);
    } catch (err) {
      text = "";
      out.replaceChildren(errorBox(err));
    }
    formBox.replaceChildren(paramsForm(text, select.value));
  };
  select.addEventListener("change", load);
  let poll = 0;
  const run = async () => {
    out.replaceChildren();
    clearInterval(poll);
    stage.replaceChildren();
    let token;
    try {
      const r = await api.call("POST", `/v2/render/${p.uid}`, { json: { movie: select.value, params: paramsOf(text, select.value) } });
      token = r.token;
    } catch (err) {
      out.append(errorBox(err));
      return;
    }
    const f = FORMATS[format.value];
    const url = outputUrl(token, format.value);
    tokenBox.replaceChildren("Token ", h("code", { id: "token-value" }, token), " · ", h("a", { href: url, target: "_blank", rel: "noopener" }, url));
    const media =
      f.kind === "video"
        ? h("video", { id: "player", src: url, controls: true, autoplay: true, muted: true, playsinline: true })
        : h("img", { id: "player", src: url, alt: `${format.value} of ${select.value}` });
    // The player asks first, so that it is the render's viewer and plays
    // the bytes as they are made.
    media.addEventListener("error", async () => {
      try {
        const err = await api.errorOf(url);
        if (err) out.replaceChildren(errorBox(err));
      } catch {
        /* the status below says what went wrong */
      }
    });
    stage.append(media);
    const tick = async () => {
      try {
        const s = await api.call("GET", `/v2/render/${token}/status?ext=${f.status}`);
        state.textContent = s.state;
        progress.value = s.progress;
        timings.textContent = statusLine(s);
        if (s.state === "failed" && s.error) out.replaceChildren(h("p", { class: "error", role: "alert" }, `${s.error.code}: ${s.error.message}`));
        if (s.state === "done" || s.state === "failed") clearInterval(poll);
      } catch (err) {
        out.replaceChildren(errorBox(err));
        clearInterval(poll);
      }
    };
    poll = every(root, 400, tick);
    tick();
  };
  root.append(
    h("h1", {}, "Preview"),
    h(
      "div",
      { class: "split" },
      h(
        "aside",
        {},
        h("label", { for: "movie" }, "Template"),
        select,
        formBox,
        h("label", { for: "format" }, "Format"),
        format,
        h("button", { type: "button", id: "render", class: "primary", onclick: run }, "Render"),
      ),
      h(
        "div",
        { class: "grow" },
        h("div", { class: "status-line" }, "State: ", state, " ", progress, " ", timings),
        tokenBox,
        out,
        stage,
      ),
    ),
  );
  await load();
}

// ---- renders ---------------------------------------------------------

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} copied to the clipboard`);
  } catch (err) {
    toast(`The clipboard refused: ${err.message}; select the text and copy it.`);
  }
}

/** Rows of the renders page per page, and status reads at once. */
const RENDERS_PAGE = 20;
const STATUS_AT_ONCE = 3;

/**
 * At most `n` of the calls given to the returned function run at once:
 * each status read of a token never rendered prepares its content key.
 */
function limiter(n) {
  let running = 0;
  const waiting = [];
  const next = () => {
    if (running >= n || waiting.length === 0) return;
    running++;
    const [fn, resolve, reject] = waiting.shift();
    fn()
      .then(resolve, reject)
      .finally(() => {
        running--;
        next();
      });
  };
  return (fn) =>
    new Promise((resolve, reject) => {
      waiting.push([fn, resolve, reject]);
      next();
    });
}

async function rendersView(root) {
  const p = project();
  const base = location.origin;
  const first = await api.call("GET", `/v1/list/render/${p.uid}?limit=${RENDERS_PAGE}`);
  root.append(h("h1", {}, "Renders"));
  if (first.renders.length === 0) {
    root.append(h("p", { class: "muted" }, "No render requests yet: the Preview page makes one."));
    return;
  }
  const shown = h("p", { class: "muted", id: "renders-count" });
  const list = h("div", { class: "renders", id: "renders" });
  const more = h("button", { type: "button", id: "more-renders" }, "Show more");
  root.append(shown, list, more);
  const queue = limiter(STATUS_AT_ONCE);
  let next = null;
  const add = (page) => {
    for (const r of page.renders) {
      const row = h("article", { class: "card render", "data-token": r.token }, h("code", {}, r.token), h("span", { class: "muted" }, " loading…"));
      list.append(row);
      queue(() => (row.isConnected ? fillRender(p, r, row, base) : Promise.resolve()));
    }
    next = page.next;
    more.hidden = !next;
    shown.textContent = `${list.children.length} of ${page.count} render token(s), newest first.`;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      add(await api.call("GET", `/v1/list/render/${p.uid}?limit=${RENDERS_PAGE}&cursor=${api.enc(next)}`));
    } catch (err) {
      toast(err.message);
    } finally {
      more.disabled = false;
    }
  });
  add(first);
}

async function fillRender(p, r, row, base) {
  let s;
  let hasPoster = false;
  try {
    s = await api.call("GET", `/v2/render/${r.token}/status`);
    hasPoster = await api.exists(`/v2/render/${r.token}/status?ext=poster`, { signed: false });
  } catch (err) {
    row.replaceChildren(h("code", {}, r.token), errorBox(err));
    return;
  }
  const landing = h("input", { class: "landing", value: `${base}/render/${r.token}.mp4`, "aria-label": "Landing page URL for the email snippet" });
  const video = videoSnippet(base, r.token, hasPoster);
  const videoText = h("textarea", { readonly: true, rows: 4, class: "snippet video-snippet", "aria-label": "Video embed snippet" });
  videoText.value = video;
  const emailText = h("textarea", { readonly: true, rows: 3, class: "snippet email-snippet", "aria-label": "Email snippet" });
  const landingError = h("p", { class: "error landing-error", role: "alert", hidden: true });
  const copyEmail = h("button", { type: "button", class: "copy-email", onclick: () => copy(emailText.value, "The email snippet") }, "Copy email snippet");
  const updateEmail = () => {
    try {
      emailText.value = emailSnippet(base, r.token, landing.value, hasPoster);
      landingError.hidden = true;
      copyEmail.disabled = false;
      landing.removeAttribute("aria-invalid");
    } catch (err) {
      emailText.value = "";
      landingError.textContent = err.message;
      landingError.hidden = false;
      copyEmail.disabled = true;
      landing.setAttribute("aria-invalid", "true");
    }
  };
  landing.addEventListener("input", updateEmail);
  updateEmail();
  const uploads = (s.uploads || []).map((u) =>
    h("li", {}, `${u.type} (${u.extension || "mp4"}): ${u.state}`, u.url ? ` · ${u.url}` : "", u.id ? ` · id ${u.id}` : "", u.status ? ` · HTTP ${u.status}` : "", u.error ? ` · ${u.error}` : "", ` · ${u.attempts} attempt(s)`),
  );
  const t = s.timings || {};
  // A token nobody has played yet has no job: no timings, and "queued"
  // would say it waits for a renderer when nothing asked for it.
  const state = s.timings
    ? [s.state, " ", h("progress", { max: 100, value: s.progress }), ` ${s.progress} %`]
    : "not rendered yet (its first viewer renders it)";
  row.replaceChildren(
    h("header", { class: "row" },
      h("a", { href: `/render/${r.token}.mp4`, target: "_blank", rel: "noopener" }, h("code", {}, r.token)),
      h("span", {}, typeof r.movie === "string" ? r.movie : JSON.stringify(r.movie)),
      h("span", { class: "muted" }, when(r.created)),
      h("button", { type: "button", class: "danger small delete-render", onclick: () => deleteRender(p, r, row) }, "Delete outputs")),
    h("dl", { class: "facts" },
      h("dt", {}, "Params"), h("dd", { class: "mono" }, JSON.stringify(r.params)),
      h("dt", {}, "State"), h("dd", { class: "state" }, state),
      h("dt", {}, "Size"), h("dd", {}, bytes(s.size)),
      h("dt", {}, "Render time"), h("dd", {}, t.render_secs !== null && t.render_secs !== undefined ? `${t.render_secs.toFixed(2)} s` : "–"),
      h("dt", {}, "Uploads"), h("dd", {}, uploads.length ? h("ul", {}, uploads) : "none"),
      s.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, `${s.error.code}: ${s.error.message}`)] : null),
    h("div", { class: "snippets" },
      h("div", {}, h("h3", {}, "Web page"), videoText, h("button", { type: "button", class: "copy-video", onclick: () => copy(video, "The video snippet") }, "Copy video snippet")),
      h("div", {}, h("h3", {}, "Email"), h("label", {}, "Landing page ", landing), landingError, emailText, copyEmail)),
  );
}

async function deleteRender(p, r, row) {
  const ok = await confirmDialog("Delete this render's outputs?", [`Every cached output of token ${r.token} goes (video, formats, poster). The token stays valid: its next viewer renders it again.`], "Delete outputs");
  if (!ok) return;
  try {
    await api.call("DELETE", `/v2/render/${r.token}`);
    toast("Outputs deleted");
    fillRender(p, r, row, location.origin);
  } catch (err) {
    toast(err.message);
  }
}

// ---- server ----------------------------------------------------------

async function serverView(root) {
  const box = h("div", { class: "dashboard", id: "dashboard" });
  root.append(h("h1", {}, "Server"), h("p", { class: "muted" }, "From ", h("a", { href: "/metrics" }, "/metrics"), ", every 2 s."), box);
  const draw = async () => {
    let text;
    try {
      text = await api.text("/metrics", { signed: false });
    } catch (err) {
      box.replaceChildren(errorBox(err));
      return;
    }
    const m = parseMetrics(text);
    const one = (name) => m.filter((x) => x.name === name).reduce((a, x) => a + x.value, 0);
    const states = m.filter((x) => x.name === "clipstream_renders");
    const hits = one("clipstream_cache_hits_total");
    const misses = one("clipstream_cache_misses_total");
    const rate = hits + misses > 0 ? `${Math.round((100 * hits) / (hits + misses))} %` : "–";
    const finished = m.filter((x) => x.name === "clipstream_renders_finished_total");
    const max = Math.max(1, ...states.map((s) => s.value));
    box.replaceChildren(
      h("div", { class: "card" }, h("h2", {}, "Renders by state"),
        h("ul", { class: "bars" }, states.map((s) => h("li", {}, h("span", {}, s.labels.state), h("meter", { min: 0, max, value: s.value }), h("b", { "data-state": s.labels.state }, s.value))))),
      h("div", { class: "card" }, h("h2", {}, "Queue depth"), h("p", { class: "big", id: "queue-depth" }, String(states.filter((s) => s.labels.state === "queued").reduce((a, s) => a + s.value, 0)))),
      h("div", { class: "card" }, h("h2", {}, "Cache"),
        h("p", { class: "big", id: "hit-rate" }, rate), h("p", { class: "muted" }, `hit rate: ${hits} hits, ${misses} misses`),
        h("p", {}, "Size: ", h("b", { id: "cache-size" }, bytes(one("clipstream_cache_size_bytes"))), " in ", h("b", { id: "cache-entries" }, String(one("clipstream_cache_entries"))), " render(s)"),
        h("p", { class: "muted" }, `served from cache: ${bytes(one("clipstream_cache_bytes_served_total"))}`)),
      h("div", { class: "card" }, h("h2", {}, "Finished"), h("ul", {}, finished.map((f) => h("li", {}, `${f.labels.outcome}: ${f.value}`)))),
    );
  };
  await draw();
  every(root, 2000, () => draw().catch(() => {}));
}

const VIEWS = {
  signin: signinView,
  projects: projectsView,
  assets: assetsView,
  templates: templatesView,
  preview: previewView,
  renders: rendersView,
  server: serverView,
};

// The skip link moves focus only: its "#main" is no page.
document.querySelector("a.skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", () => {
  if (!location.hash || location.hash.startsWith("#/")) route();
});
route();
