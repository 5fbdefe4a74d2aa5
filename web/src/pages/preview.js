// The preview page: posts the render request and plays the token's
// output as it renders, with the status beside it.

import * as api from "../api.js";
import { h, bytes } from "../dom.js";
import { shared, project, every, errorBox } from "../router.js";
import { paramsForm, paramsOf } from "../params.js";

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

export async function previewView(root) {
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
