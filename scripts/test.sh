#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests and the
# end-to-end tests against the real binary on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
# ffmpeg (the CLI) probes outputs in the tests; chromium plays them, and
# chromium-driver drives it through the studio (tests/tests/studio.rs).
need_packages "${BUILD_PACKAGES[@]}" ffmpeg chromium chromium-driver python3
# openssl makes the throwaway certificates of the FTPS tests.
need_packages openssl
# A throw-away PostgreSQL cluster backs the PostgreSQL repository's tests
# (tests/src/peers/postgres.rs, issue 21).
need_packages postgresql-15
# The deployment examples' checks and the cluster tests' load balancer:
# nginx runs conf/deploy/nginx.conf, PyYAML parses the YAML files
# (tests/tests/deploy.rs; systemd-analyze checks the unit where installed).
need_packages nginx-light python3-yaml
# The upload tests' peers come from PyPI and npm (scripts/peers.sh).
python3 -m pip --version >/dev/null 2>&1 || need_packages python3-pip
command -v npm >/dev/null 2>&1 || need_packages nodejs npm
# The studio's bundle (web/dist), embedded by the build below, and the
# unit tests of its helpers.
scripts/web.sh
scripts/web.sh --test
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The crates' layout: no module uses another in a circle.
python3 scripts/cycles.py actors/src
python3 scripts/cycles.py server/src
python3 scripts/cycles.py storage/src
# The end-to-end tests start this binary.
cargo build --locked --bin clipstream
scripts/peers.sh >/dev/null
cargo test --workspace --locked
# --- reliability (issue 5): short fuzz runs of every target ---------------
# 15 s each after replaying the kept findings; `scripts/fuzz.sh 3600` is the
# long run (RELIABILITY.md).
scripts/fuzz.sh 15
# --- end reliability -------------------------------------------------------
