#!/usr/bin/env bash
# The one command that runs every test: formatting, lints, unit, integration and backend tests.
# Installs moto's server (S3 and Glacier peer) into a virtual environment beside the build and
# starts it on a free loopback port; backend tests fail (never skip) when it is missing here.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/glaciersync/target}"
mkdir -p "$CARGO_TARGET_DIR"

venv="$CARGO_TARGET_DIR/moto-venv"
if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
  echo "== installing moto's server into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.2,<6'
fi

# Reference command-line tools (Debian packages): encryption tests decrypt stored objects with
# `age`, compression tests unpack catalog copies with `zstd`.
apt_install() {
  echo "== installing $* (apt-get install)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq "$@" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
  else sudo apt-get install -y -qq "$@" >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq "$@" >/dev/null; }
  fi
}
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then apt_install age; fi
if ! command -v zstd >/dev/null; then apt_install zstd; fi

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$CARGO_TARGET_DIR/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
export GLACIERSYNC_TEST_MOTO="http://127.0.0.1:$port"
export GLACIERSYNC_TEST_PYTHON="$venv/bin/python"
export GLACIERSYNC_TEST_DISALLOW_SKIP=1

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
export GLACIERSYNC_TEST_FAULT_REPORT="$CARGO_TARGET_DIR/faults.txt"
rm -f "$GLACIERSYNC_TEST_FAULT_REPORT"
cargo test --no-fail-fast 2>&1 | tee "$CARGO_TARGET_DIR/test.log"
# The faults the fault tests injected (cargo test hides what passing tests print).
if [ -s "$GLACIERSYNC_TEST_FAULT_REPORT" ]; then
  echo "== faults injected"
  sort "$GLACIERSYNC_TEST_FAULT_REPORT"
fi
# One closing line over every test binary and the doc tests.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' \
  "$CARGO_TARGET_DIR/test.log"
