#!/usr/bin/env bash
# Builds the studio (web/, CONTRACT section 14) into web/dist, which the
# server's build embeds: CodeMirror and esbuild from the npm registry, at
# the versions of web/package-lock.json, installed once into a cache
# folder (default .cache/web of the checkout; CLIPSTREAM_WEB_CACHE
# overrides), and Node.js/npm from Debian when missing. Quick when nothing
# changed. scripts/serve.sh and scripts/test.sh run it before building;
# `scripts/web.sh --test` runs the studio's unit tests instead.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
command -v npm >/dev/null 2>&1 || need_packages nodejs npm
CACHE="${CLIPSTREAM_WEB_CACHE:-$PWD/.cache/web}"
mkdir -p "$CACHE"
# One builder at a time (serve.sh and test.sh may run side by side).
exec 9>"$CACHE/.lock"
flock 9
# The lock file's digest marks an installed set: a changed lock installs
# again, exactly (npm ci).
want=$(sha256sum web/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$CACHE/.installed" 2>/dev/null)" != "$want" ]; then
  cp web/package.json web/package-lock.json "$CACHE/"
  (cd "$CACHE" && npm ci --silent --no-audit --no-fund) >&2
  echo "$want" >"$CACHE/.installed"
fi
# --test: the unit tests of the studio's pure helpers (web/test), bundled
# like the studio (the sources import CodeMirror from the cache) and run by
# Node's test runner; scripts/test.sh runs them.
if [ "${1:-}" = "--test" ]; then
  tests=$(mktemp -d)
  trap 'rm -rf "$tests"' EXIT
  NODE_PATH="$CACHE/node_modules" "$CACHE/node_modules/.bin/esbuild" web/test/*.test.js \
    --bundle --platform=node --format=esm --outdir="$tests" --out-extension:.js=.mjs --log-level=warning
  node --test "$tests"/*.mjs
  exit
fi
# The bundle is made again only when a source is newer than it.
out=web/dist
if [ -f "$out/app.js" ] && [ -z "$(find web/index.html web/src scripts/web.sh "$CACHE/.installed" -newer "$out/app.js" -print -quit)" ]; then
  exit 0
fi
tmp=$(mktemp -d "$PWD/web/.dist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# NODE_PATH: the sources import CodeMirror from the cache's node_modules.
NODE_PATH="$CACHE/node_modules" "$CACHE/node_modules/.bin/esbuild" web/src/main.js \
  --bundle --minify --target=es2020 --format=iife \
  --outfile="$tmp/app.js" --log-level=warning
cp web/src/app.css web/src/editor.css "$tmp/"
cp web/index.html web/src/icon.svg "$tmp/"
# Swapped in whole, so a build never embeds half a bundle.
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
