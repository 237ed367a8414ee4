#!/usr/bin/env bash
# Installs what redlock needs to build, test and run, from Debian 12 packages.
# Idempotent and quiet: it says nothing and touches nothing when all is there.
#
#   scripts/install-deps.sh          what every build needs
#   scripts/install-deps.sh fuzz     that, and clang with libFuzzer (scripts/fuzz.sh)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev libhiredis-dev libspdlog-dev libexpected-dev libssl-dev openssl
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
  libcpp-httplib-dev libsqlite3-dev libpq-dev
  redis-server redis-tools postgresql python3-yaml
  python3-dev pybind11-dev python3-pytest python3-pytest-asyncio
  python3-fastapi python3-uvicorn python3-httpx
  gnuplot-nox
)
# Optional groups, by name.
fuzz_packages=(clang libclang-rt-14-dev)
for group in "$@"; do
  case "$group" in
    fuzz) packages+=("${fuzz_packages[@]}") ;;
    *) echo "install-deps: unknown group '$group' (fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Debian's redis-server and postgresql packages start system services where an
# init system runs; redlock starts its own servers, so keep theirs off.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
