// The studio's frame: a view per location hash (#/projects, …), the
// navigation, and what a view holds while it is on screen (timers, blob:
// URLs, the editor), let go of when another replaces it.

import * as api from "./api.js";
import { h } from "./dom.js";

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
export const shared = { movie: null, params: {} };
// What the view on screen holds (timers, blob: URLs, the editor), let go
// of when another replaces it.
let leaving = [];

/** Runs `fn` when the view on screen is replaced. */
export function onLeave(fn) {
  leaving.push(fn);
}

export function project() {
  const raw = sessionStorage.getItem("clipstream.project");
  try {
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function setProject(p) {
  if (p) sessionStorage.setItem("clipstream.project", JSON.stringify({ uid: p.uid, name: p.name }));
  else sessionStorage.removeItem("clipstream.project");
}

export function go(page) {
  // Setting the hash it already has fires no hashchange: route at once.
  if (location.hash === "#/" + page) route();
  else location.hash = "#/" + page;
}

/**
 * `fn` every `ms` while the view whose root is `root` is on screen: a
 * timer started after an await, once the view was replaced, stops at its
 * first tick.
 */
export function every(root, ms, fn) {
  const id = setInterval(() => {
    if (root.isConnected) fn();
    else clearInterval(id);
  }, ms);
  onLeave(() => clearInterval(id));
  return id;
}

/** A blob: URL given back when the view goes. */
export function viewBlob(url) {
  onLeave(() => URL.revokeObjectURL(url));
  return url;
}

export function errorBox(err) {
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
  const view = views[page] || views.projects;
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

/** Shows the page of the current hash again (after a deletion). */
export function refreshPage() {
  route();
}

// The views by page name (main.js gives them).
let views = {};

/** Registers the views and shows the page of the current hash. */
export function start(byName) {
  views = byName;
  // The skip link moves focus only: its "#main" is no page.
  document.querySelector("a.skip").addEventListener("click", (e) => {
    e.preventDefault();
    main.focus();
  });
  window.addEventListener("hashchange", () => {
    if (!location.hash || location.hash.startsWith("#/")) route();
  });
  route();
}
