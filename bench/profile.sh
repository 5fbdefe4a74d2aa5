#!/usr/bin/env bash
# Where a cold render's time goes: perf samples one `clipstream render` of
# the standard template (the fixtures bench/run.sh made) and prints the
# functions and libraries that took at least 0.5 % of the CPU time.
#
#   bench/profile.sh            720p, 10 s
#   bench/profile.sh 1080p      1080p, 10 s
#
# perf's software clock is used: this kind of VM has no hardware counters.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
need_packages linux-perf
size=${1:-720p}
edit=target/bench/fixtures/std-$size-10s.json
[ -f "$edit" ] || { echo "no $edit: run bench/run.sh first (it makes the fixtures)" >&2; exit 1; }
cargo build --release --locked -p clipstream
data=target/bench/perf-$size.data
perf record -q -e cpu-clock -F 1999 -o "$data" -- \
  target/release/clipstream render "$edit" --param NAME=Profile -o "target/bench/profile-$size.mp4"
echo "== by library"
perf report -i "$data" --no-children --sort dso --stdio --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$'
echo "== by function"
perf report -i "$data" --no-children --sort dso,symbol --stdio --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$'
