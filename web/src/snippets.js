// The copy-to-clipboard snippets of the renders page: a <video> for web
// pages and a linked still for email. Pure functions (no DOM), so that
// web/test runs them under Node.

export function videoSnippet(base, token, hasPoster) {
  const poster = hasPoster ? ` poster="${base}/render/${token}-poster.jpg"` : "";
  return `<video controls playsinline width="640"${poster}>
  <source src="${base}/render/${token}.mp4" type="video/mp4">
  <source src="${base}/render/${token}.m3u8" type="application/vnd.apple.mpegurl">
</video>`;
}

function attr(text) {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

/** The landing page as an http(s) URL, or an Error saying why not. */
export function landingUrl(text) {
  let url;
  try {
    url = new URL(text.trim());
  } catch {
    return new Error("The landing page is not a URL: give an http:// or https:// address.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return new Error(`The landing page must be an http:// or https:// address, not ${url.protocol}`);
  }
  return url;
}

/**
 * The email snippet; throws when the landing page is not an http(s) URL
 * (a javascript: or data: link in a mail is a trap, not a video).
 */
export function emailSnippet(base, token, landing, hasPoster) {
  const url = landingUrl(landing);
  if (url instanceof Error) throw url;
  // Mail clients do not play <video>: a still (the poster) or the GIF,
  // linking to the page that plays the video.
  const img = hasPoster ? `${base}/render/${token}-poster.jpg` : `${base}/render/${token}.gif`;
  return `<a href="${attr(url.href)}"><img src="${img}" width="640" alt="Play your video" style="display:block;border:0"></a>`;
}
