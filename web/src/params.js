// The form of a template's placeholders, shared by the templates and
// preview pages: values typed are kept per movie name while the tab lives.

import { h } from "./dom.js";
import { placeholdersOf, mergeDefaults } from "./template.js";
import { shared } from "./router.js";

export function paramsForm(text, movie) {
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

export function paramsOf(text, movie) {
  const values = shared.params[movie] || {};
  const defaults = mergeDefaults(text);
  const out = {};
  for (const n of placeholdersOf(text)) {
    const v = values[n] !== undefined ? values[n] : defaults[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}

