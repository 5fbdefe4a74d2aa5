// What the studio reads from a template's text: its placeholders, the
// merge fields' values, and a timeline of its tracks and clips.

import { h } from "./dom.js";

/**
 * The `{{NAME}}` placeholders of a template's text, each once, for the
 * form while it is typed (a saved template's list is the PUT's answer).
 * The grammar must stay the server's: `placeholders` and
 * `is_placeholder_name` in actors/src/engine/edit/tpl.rs (letters, digits,
 * `_`, `-`, `.`, at most 128, spaces inside the braces trimmed).
 */
export function placeholdersOf(text) {
  const names = new Set();
  for (const m of text.matchAll(/\{\{\s*([A-Za-z0-9_.-]{1,128})\s*\}\}/g)) names.add(m[1]);
  return [...names];
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** `merge: [{find, replace}]` as a map: the form's first values. */
export function mergeDefaults(text) {
  const edit = parse(text);
  const out = {};
  if (edit && Array.isArray(edit.merge)) {
    for (const m of edit.merge) if (m && typeof m.find === "string") out[m.find] = m.replace;
  }
  return out;
}

function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/**
 * Tracks as rows, clips as bars over time; a clip with a {{placeholder}}
 * in it is personalised and marked. A clip whose start or length is not a
 * number yet (a placeholder, "auto", "end") is drawn from the previous
 * clip's end or to the end of the movie, dashed.
 */
export function timelineView(text) {
  const edit = parse(text);
  const tracks = edit && edit.timeline && Array.isArray(edit.timeline.tracks) ? edit.timeline.tracks : null;
  if (!tracks) return h("p", { class: "muted" }, "The timeline shows once the JSON parses and has timeline.tracks.");
  const rows = [];
  let end = 0;
  for (const track of tracks) {
    const clips = track && Array.isArray(track.clips) ? track.clips : [];
    let cursor = 0;
    const bars = clips.map((clip) => {
      const start = num(clip && clip.start);
      const length = num(clip && clip.length);
      const s = start === null ? cursor : start;
      const bar = { start: s, length, clip, guessed: start === null || length === null };
      if (length !== null) cursor = s + length;
      end = Math.max(end, s + (length || 0));
      return bar;
    });
    rows.push(bars);
  }
  end = Math.max(end, 1);
  const ticks = [];
  const step = end > 30 ? 10 : end > 10 ? 5 : 1;
  for (let t = 0; t <= end; t += step) ticks.push(h("span", { class: "tick", "data-at": t }, `${t}s`));
  const scale = h("div", { class: "scale" }, ticks);
  const body = rows.map((bars, i) =>
    h(
      "div",
      { class: "track" },
      h("span", { class: "track-name" }, `Track ${i + 1}`),
      h(
        "div",
        { class: "lane" },
        bars.map((b) => {
          const asset = (b.clip && b.clip.asset) || {};
          const personal = /\{\{/.test(JSON.stringify(b.clip));
          const label = asset.type === "title" || asset.type === "html" ? asset.text || asset.type : asset.src || asset.type || "clip";
          const length = b.length === null ? Math.max(0, end - b.start) : b.length;
          const el = h(
            "div",
            {
              class: `clip ${asset.type || ""}${personal ? " personal" : ""}${b.guessed ? " guessed" : ""}`,
              title: `${asset.type || "clip"} ${b.start}s–${b.start + length}s${personal ? " (personalised)" : ""}`,
            },
            personal ? h("span", { class: "badge", "aria-label": "personalised" }, "★ ") : "",
            String(label),
          );
          // Positions through the CSSOM: the CSP forbids style attributes
          // in markup, not properties set by the studio's own script.
          el.style.left = `${(100 * b.start) / end}%`;
          el.style.width = `${Math.max(0.5, (100 * length) / end)}%`;
          return el;
        }),
      ),
    ),
  );
  for (const t of ticks) t.style.left = `${(100 * Number(t.dataset.at)) / end}%`;
  return h("div", { class: "timeline", role: "img", "aria-label": `Timeline of ${tracks.length} track(s), ${end} s` }, scale, body,
    h("p", { class: "muted legend" }, h("span", { class: "badge" }, "★"), " personalised clip (has a {{placeholder}})"));
}
