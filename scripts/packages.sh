# Sourced by serve.sh and test.sh: installs the Debian packages a command
# needs when they are missing, so a fresh Debian 12 machine with only the
# Rust toolchain needs nothing else.

# FFmpeg 5.1's development files for ffmpeg-next, and what its bindgen
# build needs (clang's libclang, pkg-config).
BUILD_PACKAGES=(
  libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev
  libavdevice-dev libswscale-dev libswresample-dev
  clang pkg-config
)

need_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing missing packages: ${missing[*]}" >&2
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}
