#!/usr/bin/env bash
# The benchmark, one command from the repository's root or anywhere:
#
#   bench/run.sh              every scenario, 5 repetitions, writes bench/RESULTS.md
#   bench/run.sh --reps 1     a quick try of the harness (not for the record)
#   bench/run.sh --cluster-only --reps 3
#                             only the cluster scenario (issue 21): its section of
#                             bench/RESULTS.md is replaced, the rest kept
#
# Installs the Debian packages it is missing (FFmpeg's development files and
# clang to build, the ffmpeg CLI for fixtures and the peer, wrk, nginx,
# gnuplot, and PostgreSQL 15 for the cluster scenario, which installs
# SeaweedFS with scripts/peers.sh or reuses $CLIPSTREAM_PEERS), builds the
# release binaries, generates the fixtures, runs every scenario interleaved
# with its peer and writes bench/RESULTS.md, bench/results.json and
# bench/render-cost.png.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
need_packages "${BUILD_PACKAGES[@]}" ffmpeg wrk nginx-light gnuplot-nox postgresql-15
cargo build --release --locked -p clipstream -p clipstream-bench
# Several hundred concurrent connections need more descriptors than the
# usual soft limit of 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
exec target/release/clipstream-bench "$@"
