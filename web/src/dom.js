// Small DOM helpers: elements are built, never parsed from strings, so
// names and messages from the server are always text, never markup.

export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else if (k === "muted") {
      // The attribute only sets the default; autoplay looks at the
      // property, which the parser (not setAttribute) derives from it.
      el.defaultMuted = true;
      el.muted = true;
    }
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const kid of kids) {
    if (kid === undefined || kid === null || kid === false) continue;
    if (Array.isArray(kid)) append(el, kid);
    else el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function when(unixSecs) {
  if (!unixSecs) return "–";
  return new Date(unixSecs * 1000).toLocaleString();
}

let toastTimer = 0;
export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 4000);
}

/**
 * A modal confirmation (the native <dialog>: focus is trapped and Escape
 * cancels). Resolves true when confirmed.
 */
export function confirmDialog(title, lines, action) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      lines.map((l) => h("p", {}, l)),
    );
    const done = (v) => {
      dialog.close();
      dialog.remove();
      resolve(v);
    };
    dialog.append(
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", id: "confirm-cancel", onclick: () => done(false) }, "Cancel"),
        h("button", { type: "button", id: "confirm-ok", class: "danger", onclick: () => done(true) }, action),
      ),
    );
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("#confirm-cancel").focus();
  });
}
