#!/usr/bin/env bash
# ringserve: one script for users and CI.
#   ./run.sh          install what is missing, build, start the all-in-one demo node
#   ./run.sh test     install what is missing, build, run every test (release build,
#                     then the unit tests again under ASan+UBSan)
#   ./run.sh build    install what is missing and build only
set -euo pipefail
cd "$(dirname "$0")"

MODE="${1:-run}"

# Debian 12 packages the build, the tests and the demo use. The toolchain is
# listed too: a minimal Debian (debootstrap --variant=minbase) has none of it.
PACKAGES=(
  build-essential pkg-config meson ninja-build
  liburing-dev libnuma-dev libhwloc-dev hwloc libcmocka-dev
  libhttp-parser-dev libjson-c-dev libjansson-dev libcjson-dev libxxhash-dev libopenblas-dev libyaml-dev zlib1g-dev
  python3 procps iproute2 curl ca-certificates
  memcached   # tests/bench: `ringserve bench --protocol memcache` against the real thing
)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "ringserve needs these Debian packages; run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "run.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build_release() {
  if [ ! -f build/build.ninja ]; then
    meson setup build --buildtype=release -Doptimization=2
  fi
  ninja -C build
}

build_asan() {
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
  fi
  ninja -C build-asan
}

# Prints "N passed, N failed" from a meson test log so every run ends with
# one plain summary line.
summarize() {
  local log="$1" label="$2"
  python3 - "$log" "$label" <<'PY'
import json, sys
passed = failed = skipped = 0
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1
print(f"{sys.argv[2]}: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
}

case "$MODE" in
  run)
    install_missing
    build_release
    exec ./build/ringserve serve --config examples/demo.yaml
    ;;
  build)
    install_missing
    build_release
    ;;
  test)
    install_missing
    build_release
    status=0
    meson test -C build --print-errorlogs --num-processes 2 || status=1
    summarize build/meson-logs/testlog.json "release" || true
    build_asan
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      meson test -C build-asan --suite unit --print-errorlogs --num-processes 2 || status=1
    summarize build-asan/meson-logs/testlog.json "asan+ubsan" || true
    if [ "$status" -ne 0 ]; then
      echo "run.sh test: FAILED" >&2
    fi
    exit "$status"
    ;;
  *)
    echo "usage: ./run.sh [test|build]" >&2
    exit 2
    ;;
esac
