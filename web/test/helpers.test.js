// The studio's pure helpers under Node's test runner (scripts/web.sh
// --test bundles this file with esbuild, as the studio itself is, and runs
// it; scripts/test.sh does that).

import { test } from "node:test";
import assert from "node:assert/strict";
import { EditorState } from "@codemirror/state";
import { json } from "@codemirror/lang-json";
import { ensureSyntaxTree } from "@codemirror/language";
import { videoSnippet, emailSnippet, landingUrl } from "../src/snippets.js";
import { parseMetrics } from "../src/metrics.js";
import { rangeOfPath, splitPath, positionOfMessage } from "../src/editor.js";
import { placeholdersOf } from "../src/template.js";

const BASE = "https://video.example";
const TOKEN = "AAAAAAAAAAAAAAAAAAAAAA";

test("the video snippet has the MP4 and HLS sources, and the poster when there is one", () => {
  const s = videoSnippet(BASE, TOKEN, true);
  assert.match(s, /^<video controls playsinline/);
  assert.ok(s.includes(`<source src="${BASE}/render/${TOKEN}.mp4" type="video/mp4">`));
  assert.ok(s.includes(`<source src="${BASE}/render/${TOKEN}.m3u8" type="application/vnd.apple.mpegurl">`));
  assert.ok(s.includes(`poster="${BASE}/render/${TOKEN}-poster.jpg"`));
  assert.ok(!videoSnippet(BASE, TOKEN, false).includes("poster="));
});

test("the email snippet links a still to an http(s) landing page only", () => {
  const s = emailSnippet(BASE, TOKEN, "https://shop.example/welcome?a=1&b=2", true);
  assert.ok(s.startsWith('<a href="https://shop.example/welcome?a=1&amp;b=2">'), s);
  assert.ok(s.includes(`<img src="${BASE}/render/${TOKEN}-poster.jpg"`), s);
  assert.ok(emailSnippet(BASE, TOKEN, "http://a.example/", false).includes(`${BASE}/render/${TOKEN}.gif`));
  for (const bad of ["javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://a.example/", "not a url", ""]) {
    assert.throws(() => emailSnippet(BASE, TOKEN, bad, true), /http:\/\/ or https:\/\//, bad);
    assert.ok(landingUrl(bad) instanceof Error, bad);
  }
  // A quote cannot break out of the attribute.
  const quoted = emailSnippet(BASE, TOKEN, 'https://a.example/"><script>', true);
  assert.ok(!quoted.includes('"><script>'), quoted);
});

test("metrics are read with their labels and values; comments and junk are skipped", () => {
  const text = [
    "# TYPE clipstream_renders gauge",
    'clipstream_renders{state="queued"} 2',
    'clipstream_renders{state="rendering",kind="x"} 1',
    "clipstream_cache_size_bytes 1048576",
    "not a metric line {",
    "",
    "# EOF",
  ].join("\n");
  assert.deepEqual(parseMetrics(text), [
    { name: "clipstream_renders", labels: { state: "queued" }, value: 2 },
    { name: "clipstream_renders", labels: { state: "rendering", kind: "x" }, value: 1 },
    { name: "clipstream_cache_size_bytes", labels: {}, value: 1048576 },
  ]);
});

test("a server path splits into keys and indexes", () => {
  assert.deepEqual(splitPath("timeline.tracks[2].clips[0].length"), ["timeline", "tracks", 2, "clips", 0, "length"]);
  assert.deepEqual(splitPath("output"), ["output"]);
  assert.deepEqual(splitPath(""), []);
});

function state(doc) {
  const s = EditorState.create({ doc, extensions: [json()] });
  ensureSyntaxTree(s, s.doc.length, 5000);
  return s;
}

test("the range of a path is its value's text, or the deepest part that exists", () => {
  const doc = '{"timeline": {"tracks": [{"clips": [{"length": -1}]}]}, "output": {"format": "mp4"}}';
  const s = state(doc);
  const r = rangeOfPath(s, "timeline.tracks[0].clips[0].length");
  assert.equal(doc.slice(r.from, r.to), "-1");
  assert.equal(r.found, true);
  const f = rangeOfPath(s, "output.format");
  assert.equal(doc.slice(f.from, f.to), '"mp4"');
  const missing = rangeOfPath(s, "output.size.width");
  assert.equal(missing.found, false);
  assert.equal(doc.slice(missing.from, missing.to), '{"format": "mp4"}');
});

test("a serde message's line and column become a position", () => {
  const s = state('{\n  "a": 1,\n  "b" 2\n}');
  const p = positionOfMessage(s, "expected `:` at line 3 column 7");
  assert.equal(s.doc.lineAt(p.from).number, 3);
  assert.equal(p.from - s.doc.line(3).from, 6);
  assert.equal(positionOfMessage(s, "no position here"), null);
  // Past the end is clamped, not thrown.
  const far = positionOfMessage(s, "at line 99 column 99");
  assert.ok(far.from <= s.doc.length);
});

test("placeholders follow the server's grammar", () => {
  assert.deepEqual(placeholdersOf('{"t": "Hi {{ NAME }} {{a.b-c_1}} {{NAME}} {{bad name}} {{}}"}'), ["NAME", "a.b-c_1"]);
});
