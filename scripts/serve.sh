#!/usr/bin/env bash
# Builds Clipstream (release, with the studio: scripts/web.sh) and runs it
# on its embedded defaults: it listens on 127.0.0.1:8080 (the studio at
# http://127.0.0.1:8080/) and keeps its data under ./data.
#
#   scripts/serve.sh                  run the server
#   scripts/serve.sh keys create      any other clipstream command
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
need_packages "${BUILD_PACKAGES[@]}"
# The studio's bundle (web/dist), which the build embeds.
scripts/web.sh
cargo build --release --locked --bin clipstream
if [ $# -eq 0 ]; then
  set -- serve
fi
exec target/release/clipstream "$@"
