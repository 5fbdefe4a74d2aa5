// The renders page: the project's tokens a page at a time, each with its
// status and its snippets.

import * as api from "../api.js";
import { h, bytes, when, toast, confirmDialog } from "../dom.js";
import { videoSnippet, emailSnippet } from "../snippets.js";
import { project, errorBox } from "../router.js";

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

export async function rendersView(root) {
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
