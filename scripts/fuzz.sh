#!/usr/bin/env bash
# Fuzzes Clipstream's parsers of untrusted input with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh                 every target for 15 s (what scripts/test.sh runs)
#   scripts/fuzz.sh 3600            every target for an hour each
#   scripts/fuzz.sh 600 media edit  chosen targets
#
# Targets (fuzz/fuzz_targets/): edit (the Edit parser and validator), fill
# (placeholder substitution), range (Range and conditional headers),
# token (token lookup), chunked (the chunked-upload assembler), admin
# (the admin socket's request lines), upload_task (a render request's
# upload destinations), shotstack_input (the Shotstack API's x-api-key
# header and probe URL segment), ingest_source (the Ingest API's POST
# sources body), ingest_upload_url (the Ingest API's signed
# upload URL: its id segment and query), pixop_token (the Pixop API's
# Authorization header and JWT checks), pixop_process (the Pixop
# process-video body and its filter chain), media
# (opening and decoding sources; its seeds are small MP4, WebM, PNG and MP3
# files made here, truncated and bit-flipped), segment (the segment
# cache's stored form of encoded packets).
#
# First every input in fuzz/regressions/<target>/ (the findings, kept) is
# replayed; then each target runs for the given seconds with a 10 s limit
# per input and 2 GiB of memory. A crash, hang or memory blow-up fails the
# script and leaves the input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
# libFuzzer itself is C++, built by libfuzzer-sys with the system's c++.
need_packages "${BUILD_PACKAGES[@]}" ffmpeg g++

SECONDS_EACH=${1:-15}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(edit fill range token chunked admin upload_task shotstack_input ingest_upload_url ingest_source pixop_token pixop_process media segment)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz passes -Z flags (sanitizers, coverage); the toolchain here is
# stable, which accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1

cd fuzz
corpus() { mkdir -p "corpus/$1"; echo "corpus/$1"; }

seed_media() {
  local dir tmp
  dir=$(corpus media)
  [ -n "$(ls -A "$dir")" ] && return 0
  tmp=$(mktemp -d)
  ffmpeg -v error -y -f lavfi -i testsrc=s=64x36:r=10:d=0.5 -c:v libx264 -pix_fmt yuv420p "$tmp/v.mp4"
  ffmpeg -v error -y -f lavfi -i testsrc=s=64x36:r=10:d=0.5 -c:v libvpx -b:v 100k "$tmp/v.webm"
  ffmpeg -v error -y -f lavfi -i color=c=red:s=32x32 -frames:v 1 "$tmp/p.png"
  ffmpeg -v error -y -f lavfi -i sine=frequency=440:duration=0.3 -c:a libmp3lame "$tmp/a.mp3"
  local f size
  for f in "$tmp"/*; do
    cp "$f" "$dir/"
    size=$(stat -c %s "$f")
    # Truncations at a third and two thirds.
    head -c $((size / 3)) "$f" >"$dir/$(basename "$f").t1"
    head -c $((size * 2 / 3)) "$f" >"$dir/$(basename "$f").t2"
    # Bit flips: one byte inverted at a few positions.
    local at
    for at in 20 $((size / 2)) $((size - 10)); do
      cp "$f" "$dir/$(basename "$f").f$at"
      printf '\xff' | dd of="$dir/$(basename "$f").f$at" bs=1 seek="$at" conv=notrunc status=none
    done
  done
  rm -rf "$tmp"
}

seed_text() {
  local dir
  dir=$(corpus edit)
  cp ../conf/examples/welcome.json "$dir/welcome.json"
  printf '{"timeline":{"tracks":[]},"output":{"format":"mp4","resolution":"sd"}}' >"$dir/empty.json"
  dir=$(corpus fill)
  { cat ../conf/examples/welcome.json; printf '\0{"NAME":"Jane"}'; } >"$dir/welcome"
  dir=$(corpus range)
  printf '\xe8\x03\x00bytes=0-1\n"abc"\n' >"$dir/simple"
  printf '\xe8\x03\x00bytes=-10,5-\n\n"x", "abc"\n*\nTue, 14 Nov 2023 22:13:20 GMT\n' >"$dir/many"
  dir=$(corpus token)
  printf 'AAAAAAAAAAAAAAAAAAAAAA' >"$dir/shaped"
  dir=$(corpus chunked)
  printf '\x04\x05\x00\x00\x05\x00\x01\x05\x00\x02\x05\x00\x03\x03\x03' >"$dir/in-order"
  dir=$(corpus admin)
  printf '{"keys":"create","account":null}\n' >"$dir/create"
  printf '{"keys":"create","account":"a"}\n' >"$dir/create-in"
  printf '{"keys":"list"}\n' >"$dir/list"
  printf '{"keys":"revoke","key":"ck_00000000000000000000000000000000"}\n' >"$dir/revoke"
  dir=$(corpus upload_task)
  printf '{"extension":"mp4","destination":{"type":"s3","bucket":"my-videos","filename":"r/w.mp4","aws_access_key_id":"AK","aws_secret_access_key":"s","s3host":"http://127.0.0.1:9000","metadata":{"a":"b"}}}' >"$dir/s3"
  printf '[{"destination":{"type":"ftp","host":"[::1]:2121","filename":"/v/w.mp4","user":"u","password":"p","epsv":true}},{"destination":{"type":"http","url":"https://h/x","filename":"w.mp4","fields":{"a":"b"},"headers":{"X-A":"1"}}}]' >"$dir/list"
  printf '{"destination":{"type":"youtube","title":"t","description":"d","category":"22","tags":["a"],"auth_secret":"x"}}' >"$dir/youtube"
  printf '{"destination":{"type":"azureblob","account":"devstoreaccount1","key":"a2V5","filename":"c/b.mp4","endpoint":"http://127.0.0.1:10000/devstoreaccount1"}}' >"$dir/azure"
  printf '{"destination":{"type":"dropbox","filename":"V/w.mp4","auth_secret":"dropbox-secret"}}' >"$dir/dropbox"
  printf '{"destination":{"type":"facebook","title":"t","description":"d","oauth_access_token":"x","endpoint":"https://graph.facebook.com"}}' >"$dir/facebook"
  dir=$(corpus shotstack_input)
  printf 'ck_0123:s3cr3t\0https%%3A%%2F%%2Fexample.com%%2Fv.mp4%%3Fa%%3D1' >"$dir/both"
  printf 'ck_0123\0http%%3A%%2F%%2F127.0.0.1%%3A8080%%2Fx' >"$dir/key-only"
  dir=$(corpus ingest_source)
  printf '{"url":"https://github.com/shotstack/test-media/raw/main/captioning/scott-ko.mp4","outputs":{"renditions":[{"format":"mp4","size":{"width":1200,"height":800},"fit":"crop","resolution":"sd","quality":70,"fps":25,"filename":"my-video"}]},"destinations":{"provider":"shotstack","exclude":false},"callback":"https://my-server.com/callback.php"}' >"$dir/seed"
  printf '{"url":"http://h/a.png","outputs":{"renditions":[{"format":"jpg","resolution":"preview"},{"format":"png","size":{"width":64}}]}}' >"$dir/images"
  dir=$(corpus ingest_upload_url)
  printf '0f8fad5b-d9cb-469f-a165-70867728950e\0expires=1796598962&signature=48a773d915428157fc7bcfff19703a91d62a16a92a4b1258c51694bb503327cc' >"$dir/signed"
  dir=$(corpus pixop_token)
  # Odd first byte: edits of the issued token (none here: the token itself).
  printf '\x01' >"$dir/issued"
  printf '\x00Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEifQ.' >"$dir/none"
  dir=$(corpus pixop_process)
  printf '\x00{"mediaContainerCodec":{"container":"mov","codec":"prores"},"appleProresProfile":"hq","deinterlacer":"yadif","resolution":{"width":640,"aspectRatioTag":"4:3"},"frameRate":{"tag":"video_pal_fast"},"frameRateConverter":"fblend","denoiser":"hqdn3d"}' >"$dir/prores"
  printf '\x01{"scanning":{"tag":"interlaced_bff"},"chromaSubsampling":{"yuv":"4:2:2","bits":10},"range":{"startPositionMilliseconds":500,"endPositionMilliseconds":1500}}' >"$dir/interlaced"
  dir=$(corpus segment)
  # One keyframe packet "abc": pts 0, dts -512, duration 512.
  printf 'CSEG\x01\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\xfe\xff\xff\xff\xff\xff\xff\0\x02\0\0\0\0\0\0\x01\x03\0\0\0abc' >"$dir/one"
}

seed_media
seed_text

cargo fuzz build
for target in "${TARGETS[@]}"; do
  flags=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1)
  case $target in
    media) flags+=(-max_len=200000) ;;
    # Past the 64 KiB bound on a request line, so both sides of it are tried.
    admin) flags+=(-max_len=70000) ;;
    *) flags+=(-max_len=20000) ;;
  esac
  if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
    echo "== $target: replaying the kept findings"
    cargo fuzz run "$target" "regressions/$target" -- -runs=0 "${flags[@]}"
  fi
  echo "== $target: fuzzing for ${SECONDS_EACH}s"
  cargo fuzz run "$target" "$(corpus "$target")" -- -max_total_time="$SECONDS_EACH" "${flags[@]}" 2>&1 |
    tee "corpus/$target.log" | grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY)' || true
  # pipefail would hide which target failed behind tee; check its log.
  if grep -qE 'ERROR: libFuzzer|panicked|SUMMARY: AddressSanitizer|Test unit written' "corpus/$target.log"; then
    echo "fuzz target $target found a problem; see fuzz/corpus/$target.log and fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
