// The server's APIs as the studio calls them. Credentials live in
// sessionStorage only (gone with the tab, never in a URL or
// localStorage) and go as HTTP Basic on each call.

const KEY = "clipstream.key";
const SECRET = "clipstream.secret";

export function signedIn() {
  return sessionStorage.getItem(KEY) !== null && sessionStorage.getItem(SECRET) !== null;
}

export function keyId() {
  return sessionStorage.getItem(KEY) || "";
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(SECRET);
  sessionStorage.removeItem("clipstream.project");
}

function authHeader(key, secret) {
  // btoa takes Latin-1 only; keys and secrets are ASCII, but a pasted
  // odd character must not throw here.
  const bytes = new TextEncoder().encode(`${key}:${secret}`);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return "Basic " + btoa(text);
}

export function auth() {
  return authHeader(sessionStorage.getItem(KEY) || "", sessionStorage.getItem(SECRET) || "");
}

/** An answer that is not 2xx, carrying the server's own words. */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && body.message) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.code = body && body.code;
    this.path = body && (body.path || body.param);
    this.body = body;
  }
  describe() {
    return this.path ? `${this.message} (at ${this.path})` : this.message;
  }
}

async function parse(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

/**
 * One API call. `credentials: "omit"` keeps the browser from answering a
 * 401's `WWW-Authenticate` with its own password dialog: the studio asks.
 */
export async function call(method, path, { body, json, headers = {}, signal } = {}) {
  const h = { Authorization: auth(), ...headers };
  let payload = body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  const res = await fetch(path, { method, headers: h, body: payload, credentials: "omit", signal });
  const data = await parse(res);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export async function signIn(key, secret) {
  const res = await fetch("/v1/list/project", {
    headers: { Authorization: authHeader(key, secret) },
    credentials: "omit",
  });
  if (!res.ok) throw new ApiError(res.status, await parse(res));
  sessionStorage.setItem(KEY, key);
  sessionStorage.setItem(SECRET, secret);
}

/** A body fetched with credentials, as a blob: URL for <img>/<video>. */
export async function blobUrl(path) {
  const res = await fetch(path, { headers: { Authorization: auth() }, credentials: "omit" });
  if (!res.ok) throw new ApiError(res.status, await parse(res));
  return URL.createObjectURL(await res.blob());
}

/**
 * A body sent with upload progress (fetch has none): resolves with the
 * parsed answer, rejects with an ApiError.
 */
export function send(method, path, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader("Authorization", auth());
    xhr.upload.onprogress = (e) => onProgress && onProgress(e.loaded);
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = { message: xhr.responseText };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    };
    xhr.onerror = () => reject(new ApiError(0, { message: "the connection to the server failed" }));
    xhr.send(body);
  });
}

export const enc = encodeURIComponent;
