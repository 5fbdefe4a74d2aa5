// The assets page: drop or choose files (uploads.js), the list with
// previews, delete.

import * as api from "../api.js";
import { h, bytes, when, toast, confirmDialog } from "../dom.js";
import { uploadFiles, pendingUploads, forgetUpload } from "../uploads.js";
import { project, viewBlob, errorBox } from "../router.js";

export async function assetsView(root) {
  const p = project();
  const input = h("input", { type: "file", id: "files", multiple: true, class: "visually-hidden" });
  const drop = h(
    "label",
    { class: "drop", for: "files", id: "drop", tabindex: "0" },
    h("strong", {}, "Drop files here"),
    " or press Enter to choose. Large files go in 1 MiB chunks and resume after a reload (drop the same file again).",
  );
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  const queue = h("ul", { class: "uploads", id: "uploads" });
  const table = h("div", { id: "assets" });
  root.append(h("h1", {}, "Assets"), input, drop, queue, table);
  const start = (files) =>
    uploadFiles(p.uid, [...files], queue, () => {
      // A resumed upload that finished is no longer interrupted.
      const left = new Set(pendingUploads(p.uid).map((u) => u.id));
      for (const row of queue.querySelectorAll(".interrupted")) if (!left.has(row.dataset.id)) row.remove();
      return listAssets(p, table);
    });
  input.addEventListener("change", () => {
    start(input.files);
    input.value = "";
  });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    start(e.dataTransfer.files);
  });
  const pending = pendingUploads(p.uid);
  if (pending.length) {
    queue.append(
      ...pending.map((u) =>
        h("li", { class: "upload interrupted", "data-id": u.id }, h("span", {}, u.name), h("span", { class: "muted" }, `interrupted at ${u.received}/${u.chunk_count} chunks: drop ${u.name} again to resume`),
          h("button", { type: "button", class: "small", onclick: (e) => { forgetUpload(u); e.target.closest("li").remove(); } }, "Forget")),
      ),
    );
  }
  await listAssets(p, table);
}

async function listAssets(p, table) {
  const { assets } = await api.call("GET", `/v1/list/data/${p.uid}`);
  const rows = assets.map((a) => {
    const preview = h("div", { class: "thumb" });
    const path = `/v1/data/${p.uid}/${api.enc(a.name)}`;
    if (a.content_type.startsWith("image/") && a.size <= 4 << 20) {
      api.blobUrl(path).then((u) => preview.append(h("img", { src: viewBlob(u), alt: "" }))).catch(() => {});
    } else if (a.content_type.startsWith("video/") || a.content_type.startsWith("audio/")) {
      // Media is fetched only when asked: it can be large.
      preview.append(
        h("button", {
          type: "button",
          class: "small",
          onclick: async (e) => {
            e.target.disabled = true;
            try {
              const u = viewBlob(await api.blobUrl(path));
              const kind = a.content_type.startsWith("video/") ? "video" : "audio";
              preview.replaceChildren(h(kind, { src: u, controls: true, muted: true, preload: "metadata" }));
            } catch (err) {
              preview.replaceChildren(errorBox(err));
            }
          },
        }, "Preview"),
      );
    }
    return h(
      "tr",
      { "data-name": a.name },
      h("td", {}, preview),
      h("td", { class: "name" }, a.name),
      h("td", {}, a.content_type),
      h("td", { class: "num" }, bytes(a.size)),
      h("td", {}, when(a.modified)),
      h("td", {}, h("button", { type: "button", class: "danger", onclick: () => deleteAsset(p, a, table) }, "Delete")),
    );
  });
  table.replaceChildren(
    assets.length === 0
      ? h("p", { class: "muted" }, "No assets yet.")
      : h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Preview", "Name", "Type", "Size", "Modified", ""].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows),
        ),
  );
}

async function deleteAsset(p, a, table) {
  const ok = await confirmDialog(`Delete ${a.name}?`, [`The asset ${a.name} (${bytes(a.size)}) goes from ${p.name}; templates that use it fail to render until it is back.`], `Delete ${a.name}`);
  if (!ok) return;
  try {
    await api.call("DELETE", `/v1/data/${p.uid}/${api.enc(a.name)}`);
    await listAssets(p, table);
  } catch (err) {
    toast(err.message);
  }
}
