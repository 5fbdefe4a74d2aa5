// Asset uploads with a progress bar each. Files up to CHUNK go in one PUT;
// larger ones through the chunked-upload API, one chunk at a time, with
// the upload's id remembered in localStorage (no secret in it) under the
// file's name, size and date: dropping the same file after a reload asks
// the server which chunks it has and sends only the others.

import * as api from "./api.js";
import { h, bytes } from "./dom.js";

export const CHUNK = 1 << 20;
const PREFIX = "clipstream.upload:";

function keyOf(uid, file) {
  return `${PREFIX}${uid}:${file.name}:${file.size}:${file.lastModified}`;
}

/** Chunked uploads of project `uid` cut off earlier (shown as such). */
export function pendingUploads(uid) {
  const out = [];
  for (let i = 0; i < localStorage.length; i++) {
    const k = localStorage.key(i);
    if (!k || !k.startsWith(`${PREFIX}${uid}:`)) continue;
    try {
      out.push(JSON.parse(localStorage.getItem(k)));
    } catch {
      localStorage.removeItem(k);
    }
  }
  return out;
}

/**
 * Drops the record of an interrupted upload (the server forgets its
 * chunks when the upload expires).
 */
export function forgetUpload(record) {
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const k = localStorage.key(i);
    if (!k || !k.startsWith(PREFIX)) continue;
    try {
      if (JSON.parse(localStorage.getItem(k)).id === record.id) localStorage.removeItem(k);
    } catch {
      localStorage.removeItem(k);
    }
  }
}

export async function uploadFiles(uid, files, queue, onDone) {
  // One at a time: each gets the connection, and the bars fill in order.
  const rows = files.map((file) => {
    const bar = h("progress", { max: file.size || 1, value: 0 });
    const state = h("span", { class: "state" }, "waiting");
    const row = h("li", { class: "upload", "data-name": file.name }, h("span", { class: "name" }, file.name), h("span", { class: "muted" }, bytes(file.size)), bar, state);
    queue.append(row);
    return { file, bar, state, row };
  });
  for (const { file, bar, state, row } of rows) {
    try {
      if (file.size > CHUNK) await chunked(uid, file, bar, state, row);
      else {
        state.textContent = "uploading";
        await api.send("PUT", `/v1/data/${uid}/${api.enc(file.name)}`, file, (n) => (bar.value = n));
      }
      bar.value = bar.max;
      state.textContent = "done";
      row.classList.add("done");
    } catch (err) {
      state.textContent = err instanceof api.ApiError ? err.describe() : String(err);
      row.classList.add("failed");
    }
  }
  onDone();
}

async function chunked(uid, file, bar, state, row) {
  const key = keyOf(uid, file);
  const count = Math.ceil(file.size / CHUNK);
  let record = null;
  let have = new Set();
  try {
    record = JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    record = null;
  }
  if (record) {
    try {
      const u = await api.call("GET", `/chunked/videos/${uid}/${record.id}`);
      have = new Set(u.received);
      state.textContent = `resuming: ${have.size}/${count} chunks on the server`;
      row.dataset.resumedFrom = String(have.size);
    } catch {
      // Expired or finished elsewhere: start over.
      record = null;
    }
  }
  if (!record) {
    const u = await api.call("POST", `/chunked/videos/${uid}?name=${api.enc(file.name)}&chunk_count=${count}&chunk_size=${CHUNK}`);
    record = { id: u["upload-id"], name: file.name, chunk_count: count, received: 0 };
    localStorage.setItem(key, JSON.stringify(record));
  }
  let sent = have.size * CHUNK;
  bar.value = Math.min(sent, file.size);
  for (let i = 0; i < count; i++) {
    if (have.has(i)) continue;
    state.textContent = `chunk ${i + 1}/${count}`;
    const part = file.slice(i * CHUNK, Math.min(file.size, (i + 1) * CHUNK));
    await api.send("POST", `/chunked/videos/${uid}/${record.id}/chunks?chunk_id=${i}`, part, (n) => (bar.value = Math.min(file.size, sent + n)));
    sent += part.size;
    have.add(i);
    record.received = have.size;
    localStorage.setItem(key, JSON.stringify(record));
  }
  state.textContent = "assembling";
  await api.call("POST", `/chunked/videos/${uid}/${record.id}/finished`);
  localStorage.removeItem(key);
}
