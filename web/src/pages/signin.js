// The sign-in page: a key and its secret, checked against the server and
// kept in the tab (api.js).

import * as api from "../api.js";
import { h } from "../dom.js";
import { go, errorBox } from "../router.js";

export async function signinView(root) {
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
