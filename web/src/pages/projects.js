// The projects page: list, create, open, delete (the confirmation names
// what goes).

import * as api from "../api.js";
import { h, when, toast, confirmDialog } from "../dom.js";
import { project, setProject, go, errorBox, refreshPage } from "../router.js";

export async function projectsView(root) {
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
    refreshPage();
  } catch (err) {
    toast(err.message);
  }
}
