// The template editor: CodeMirror 6 with JSON highlighting, and the
// server's validation errors shown as diagnostics at the JSON path the
// server names (`timeline.tracks[0].clips[0].length`).

import { EditorView, basicSetup } from "codemirror";
import { json } from "@codemirror/lang-json";
import { syntaxTree, HighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { tags } from "@lezer/highlight";
import { setDiagnostics, lintGutter } from "@codemirror/lint";

// Colours from the page's custom properties (app.css), which follow the
// system's light or dark setting; they inherit into the shadow root.
const theme = EditorView.theme({
  "&": { backgroundColor: "var(--card)", color: "var(--fg)" },
  ".cm-gutters": { backgroundColor: "var(--bg)", color: "var(--muted)", borderRight: "1px solid var(--line)" },
  ".cm-activeLine": { backgroundColor: "var(--active-line)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--active-line)" },
  ".cm-content": { caretColor: "var(--fg)" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--fg)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": { backgroundColor: "var(--selection)" },
  ".cm-tooltip": { backgroundColor: "var(--card)", color: "var(--fg)", border: "1px solid var(--line)" },
});

const highlight = HighlightStyle.define([
  { tag: tags.propertyName, color: "var(--tok-key)" },
  { tag: tags.string, color: "var(--tok-string)" },
  { tag: tags.number, color: "var(--tok-number)" },
  { tag: [tags.bool, tags.null], color: "var(--tok-atom)" },
  { tag: [tags.brace, tags.squareBracket, tags.separator, tags.punctuation], color: "var(--muted)" },
]);

/**
 * The editor lives in a shadow root of `host`: CodeMirror's own styles
 * then go in as a constructed stylesheet (adoptedStyleSheets) rather than
 * a <style> element, which the studio's CSP (style-src 'self') refuses.
 * Its layout rules come from editor.css, linked inside the shadow root.
 */
export function createEditor(host, text, onChange) {
  const shadow = host.attachShadow({ mode: "open" });
  const mount = document.createElement("div");
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/studio/editor.css";
  shadow.append(link, mount);
  return new EditorView({
    doc: text,
    parent: mount,
    root: shadow,
    extensions: [
      basicSetup,
      json(),
      theme,
      syntaxHighlighting(highlight),
      lintGutter(),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ "aria-label": "Template JSON" }),
      EditorView.updateListener.of((u) => {
        if (u.docChanged) onChange(u.state.doc.toString());
      }),
    ],
  });
}

export function setText(view, text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}

/** `a.b[2].c` → ["a", "b", 2, "c"]. */
export function splitPath(path) {
  const parts = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let m;
  while ((m = re.exec(path)) !== null) {
    if (m[2] !== undefined) parts.push(Number(m[2]));
    else parts.push(m[1]);
  }
  return parts;
}

const PUNCT = new Set(["{", "}", "[", "]", ",", ":", "⚠"]);

function children(node) {
  const out = [];
  for (let c = node.firstChild; c; c = c.nextSibling) {
    if (!PUNCT.has(c.name)) out.push(c);
  }
  return out;
}

/**
 * The text range of the value at `path`, or of the deepest part of it
 * that exists (an error about a missing field points at its parent).
 */
export function rangeOfPath(state, path) {
  const tree = syntaxTree(state);
  let node = children(tree.topNode)[0];
  if (!node) return { from: 0, to: Math.min(1, state.doc.length), found: false };
  let found = true;
  for (const part of splitPath(path)) {
    let next = null;
    if (typeof part === "number" && node.name === "Array") {
      next = children(node)[part] || null;
    } else if (node.name === "Object") {
      for (const prop of children(node)) {
        const name = prop.getChild("PropertyName");
        if (!name) continue;
        let key;
        try {
          key = JSON.parse(state.doc.sliceString(name.from, name.to));
        } catch {
          continue;
        }
        if (key === String(part)) {
          const parts = children(prop);
          next = parts[parts.length - 1] || name;
          break;
        }
      }
    }
    if (!next) {
      found = false;
      break;
    }
    node = next;
  }
  return { from: node.from, to: node.to, found };
}

/** The position a serde message names (`... at line 3 column 7`). */
export function positionOfMessage(state, message) {
  const m = /line (\d+) column (\d+)/.exec(message || "");
  if (!m) return null;
  const lineNo = Math.min(Math.max(1, Number(m[1])), state.doc.lines);
  const line = state.doc.line(lineNo);
  const at = Math.min(line.from + Math.max(0, Number(m[2]) - 1), line.to);
  return { from: at, to: Math.min(at + 1, state.doc.length) };
}

/** Shows the server's error in the editor; returns the range marked. */
export function showServerError(view, error) {
  const state = view.state;
  let range = null;
  if (error.code === "invalid_json") range = positionOfMessage(state, error.message);
  if (!range && error.path) range = rangeOfPath(state, error.path);
  if (!range) range = { from: 0, to: Math.min(1, state.doc.length) };
  const message = error.path ? `${error.path}: ${error.message}` : error.message;
  view.dispatch(
    setDiagnostics(state, [{ from: range.from, to: Math.max(range.to, range.from), severity: "error", message }]),
  );
  view.dispatch({ selection: { anchor: range.from }, scrollIntoView: true });
  return range;
}

export function clearErrors(view) {
  view.dispatch(setDiagnostics(view.state, []));
}
