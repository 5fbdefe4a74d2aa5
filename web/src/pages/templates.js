// The templates page: the JSON editor (editor.js) with the server's
// errors at their paths, the timeline and the placeholders' form.

import * as api from "../api.js";
import { h, toast, confirmDialog } from "../dom.js";
import { createEditor, setText, showServerError, clearErrors } from "../editor.js";
import { timelineView } from "../template.js";
import { shared, onLeave, project, go, errorBox, refreshPage } from "../router.js";
import { paramsForm } from "../params.js";

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

export async function templatesView(root) {
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
    refreshPage();
  } catch (err) {
    toast(err.message);
  }
}
