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
  // The records of interrupted uploads (uploads.js) name the account's
  // files: they go with the account, not with the next person at the
  // browser. They survive a reload while signed in, which is what resuming
  // needs.
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const k = localStorage.key(i);
    if (k && k.startsWith("clipstream.upload:")) localStorage.removeItem(k);
  }
}

// What the studio does when the server refuses the credentials it holds
// (main.js signs out); set once.
let unauthorized = () => {};
export function onUnauthorized(fn) {
  unauthorized = fn;
}

// Marks the studio's calls: the server then answers a refused key without
// a Basic challenge, which would make the browser show its own password
// dialog (an XMLHttpRequest cannot leave credentials out).
const STUDIO = { "X-Requested-With": "clipstream-studio" };

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
 * One request as the studio makes them, answered with the Response:
 * signed unless `signed` is false, never with the browser's own
 * credentials (`credentials: "omit"`). A 401 to a signed request signs
 * out.
 */
export async function request(method, path, { body, json, headers = {}, signal, signed = true } = {}) {
  const h = { ...STUDIO, ...headers };
  if (signed) h.Authorization = auth();
  let payload = body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  const res = await fetch(path, { method, headers: h, body: payload, credentials: "omit", signal });
  if (res.status === 401 && signed) unauthorized();
  return res;
}

/** One API call: the parsed answer, or an ApiError in the server's words. */
export async function call(method, path, options = {}) {
  const res = await request(method, path, options);
  const data = await parse(res);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** A GET whose answer is text (a template, /metrics). */
export async function text(path, options = {}) {
  const res = await request("GET", path, options);
  if (!res.ok) throw new ApiError(res.status, await parse(res));
  return res.text();
}

/** Whether a GET of `path` succeeds; its body is not read. */
export async function exists(path, options = {}) {
  const res = await request("GET", path, options);
  await cancel(res);
  return res.ok;
}

/**
 * What the server says went wrong with `path` (for a media element's
 * error, which carries no answer): an ApiError, or null when the GET
 * succeeds now (its body is left unread).
 */
export async function errorOf(path) {
  const res = await request("GET", path, { signed: false });
  if (res.ok) {
    await cancel(res);
    return null;
  }
  return new ApiError(res.status, await parse(res));
}

async function cancel(res) {
  if (res.body) await res.body.cancel().catch(() => {});
}

export async function signIn(key, secret) {
  const res = await fetch("/v1/list/project", {
    headers: { ...STUDIO, Authorization: authHeader(key, secret) },
    credentials: "omit",
  });
  if (!res.ok) throw new ApiError(res.status, await parse(res));
  sessionStorage.setItem(KEY, key);
  sessionStorage.setItem(SECRET, secret);
}

/** A body fetched with credentials, as a blob: URL for <img>/<video>. */
export async function blobUrl(path) {
  const res = await request("GET", path);
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
    xhr.setRequestHeader("X-Requested-With", STUDIO["X-Requested-With"]);
    xhr.upload.onprogress = (e) => onProgress && onProgress(e.loaded);
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = { message: xhr.responseText };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else {
        if (xhr.status === 401) unauthorized();
        reject(new ApiError(xhr.status, data));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, { message: "the connection to the server failed" }));
    xhr.send(body);
  });
}

export const enc = encodeURIComponent;
