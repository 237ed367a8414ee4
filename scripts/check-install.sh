#!/usr/bin/env bash
# Checks that redlock installs and links the ways docs/usage.md ("Linking") says:
# builds the static and the shared library (release), installs both into one
# temporary prefix, builds examples/ against it with find_package (each
# flavour) and pkg-config and against the source tree with add_subdirectory
# and FetchContent, runs every example against a local 5-node cluster on ports
# 7001-7005, and checks the shared library's SONAME and exported symbols.
#
#   scripts/check-install.sh
#
# Build trees: build/install-static, build/install-shared, build/install-examples/*
# (kept, so a second run is incremental). Quiet on success apart from a short
# summary; on a failure it prints the failing step's output and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

tmp=$(mktemp -d "${TMPDIR:-/tmp}/redlock-check-install.XXXXXX")
prefix=$tmp/prefix
log=$tmp/step.log
static_build=build/install-static
shared_build=build/install-shared
examples_build=build/install-examples
cluster_tool=$static_build/tools/cluster/redlock-cluster
cluster_up=0

cleanup() {
  if [[ $cluster_up == 1 ]]; then
    "$cluster_tool" --dir "$tmp/cluster" down >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "check-install: FAILED: $*" >&2
  if [[ -s $log ]]; then
    echo "--- output ---" >&2
    tail -n 60 "$log" >&2
  fi
  exit 1
}

# Runs a step with its output in $log; shows it only if the step fails.
step() {
  local what=$1
  shift
  "$@" >"$log" 2>&1 || fail "$what"
}

summary=()
note() { summary+=("$*"); }

scripts/install-deps.sh

# --- the two flavours, installed into one prefix -----------------------------
dev_off=(-DREDLOCK_BUILD_TESTS=OFF -DREDLOCK_BUILD_BENCH=OFF)
step "configure static" cmake --preset release -B "$static_build" \
  -DBUILD_SHARED_LIBS=OFF "${dev_off[@]}" -DREDLOCK_BUILD_TOOLS=ON
step "build static" cmake --build "$static_build" -j2 --target redlock redlock-cluster
step "configure shared" cmake --preset release -B "$shared_build" \
  -DBUILD_SHARED_LIBS=ON "${dev_off[@]}" -DREDLOCK_BUILD_TOOLS=OFF
step "build shared" cmake --build "$shared_build" -j2 --target redlock
step "install static" cmake --install "$static_build" --prefix "$prefix"
step "install shared" cmake --install "$shared_build" --prefix "$prefix"

version=$(sed -n 's/^#define REDLOCK_VERSION "\(.*\)"$/\1/p' "$prefix/include/redlock/version.hpp")
[[ $version =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || fail "no version in the installed version.hpp"
major=${BASH_REMATCH[1]}
minor=${BASH_REMATCH[2]}
# Before 1.0 the ABI may change with every minor release, so the SONAME
# carries MAJOR.MINOR; from 1.0 on, MAJOR.
if [[ $major == 0 ]]; then soname=libredlock.so.$major.$minor; else soname=libredlock.so.$major; fi

libdir=$prefix/lib
for f in include/redlock/redlock.hpp include/redlock/export.hpp include/redlock/version.hpp \
  lib/libredlock.a "lib/$soname" lib/libredlock.so lib/pkgconfig/redlock.pc \
  lib/cmake/redlock/redlockConfig.cmake lib/cmake/redlock/redlockConfigVersion.cmake \
  lib/cmake/redlock/redlock-static-targets.cmake lib/cmake/redlock/redlock-shared-targets.cmake; do
  [[ -e $prefix/$f ]] || fail "not installed: $f"
done
for f in "$prefix"/include/redlock/*; do
  [[ $f == *.hpp ]] || fail "installed a file that is not a public header: $f"
done
[[ ! -e $prefix/include/redlock/engine.hpp ]] || fail "installed a private header"
# Both flavours install the same headers; the last install must not win.
cmp -s "$static_build/lib/include/redlock/export.hpp" "$shared_build/lib/include/redlock/export.hpp" ||
  fail "export.hpp differs between the static and the shared build"
# Each installed header compiles on its own, from the install alone, under
# strict warnings.
for h in "$prefix"/include/redlock/*.hpp; do
  echo "#include <redlock/${h##*/}>" |
    c++ -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion \
      -Wshadow -Werror -I"$prefix/include" -x c++ - >"$log" 2>&1 ||
    fail "the installed ${h##*/} does not compile on its own"
done
headers=$(find "$prefix/include/redlock" -name '*.hpp' | wc -l)
note "installed $version (static + shared, $headers headers, each compiling alone) into a temporary prefix"

# --- the shared library: SONAME, exported API, hidden internals --------------
so=$libdir/$soname
readelf -d "$so" >"$log" 2>&1 || fail "readelf -d $so"
grep -q "Library soname: \[$soname\]" "$log" || fail "SONAME of $so is not $soname"
nm -DC --defined-only "$so" >"$log" 2>&1 || fail "nm -D $so"
api=(
  'redlock::Client::connect(redlock::ClientOptions)'
  'redlock::Client::acquire('
  'redlock::Client::release(redlock::Lock const&)'
  'redlock::Client::~Client()'
  'redlock::LockGuard::release()'
  'redlock::LockGuard::~LockGuard()'
  'redlock::to_string(redlock::ErrorCode)'
  'redlock::to_string(redlock::NodeStatus)'
  'redlock::to_string[abi:cxx11](redlock::Error const&)'
  'redlock::operator<<(std::ostream&, redlock::ErrorCode)'
  'redlock::operator<<(std::ostream&, redlock::NodeStatus)'
  'redlock::operator<<(std::ostream&, redlock::Error const&)'
  'redlock::to_prometheus[abi:cxx11](redlock::MetricsSnapshot const&'
  'redlock::version()'
)
for symbol in "${api[@]}"; do
  grep -qF " T $symbol" "$log" || fail "$soname does not export $symbol"
done
# Nothing of redlock::detail (functions, vtables, typeinfo) may be exported.
if grep -E ' (redlock::detail::|(vtable|typeinfo|typeinfo name|VTT) for redlock::detail::)' "$log" >"$tmp/leaks"; then
  cp "$tmp/leaks" "$log"
  fail "$soname exports redlock::detail symbols"
fi
exported=$(grep -cE ' [TBDR] redlock::' "$log" || true)
note "$soname: SONAME ok, $exported redlock:: symbols exported, none of redlock::detail"

# pkg-config, by hand, the way a Makefile would use it.
export PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pc_flags=$(pkg-config --cflags --libs redlock 2>"$log") || fail "pkg-config --cflags --libs redlock"
[[ $pc_flags == *"-I$prefix/include"* && $pc_flags == *"-lredlock"* ]] ||
  fail "pkg-config --cflags --libs redlock gave: $pc_flags"
pc_static=$(pkg-config --static --libs redlock 2>"$log") || fail "pkg-config --static --libs redlock"
for want in -luv -lhiredis -lssl -lcrypto -lspdlog -pthread; do
  [[ " $pc_static " == *" $want "* ]] || fail "pkg-config --static --libs redlock lacks $want: $pc_static"
done
[[ $(pkg-config --modversion redlock) == "$version" ]] || fail "pkg-config --modversion redlock"

# --- examples/ built every way ------------------------------------------------
# mode:extra CMake arguments. Package builds start fresh (the prefix is new
# each run); the source-tree builds are kept and rebuild incrementally.
modes=(
  "package-static:-DREDLOCK_EXAMPLE_MODE=package -DREDLOCK_SHARED_LIBS=OFF"
  "package-shared:-DREDLOCK_EXAMPLE_MODE=package -DREDLOCK_SHARED_LIBS=ON"
  "pkgconfig:-DREDLOCK_EXAMPLE_MODE=pkgconfig"
  "subdirectory:-DREDLOCK_EXAMPLE_MODE=subdirectory"
  "fetchcontent:-DREDLOCK_EXAMPLE_MODE=fetchcontent"
)
for entry in "${modes[@]}"; do
  mode=${entry%%:*}
  read -r -a args <<<"${entry#*:}"
  dir=$examples_build/$mode
  [[ $mode == package-* || $mode == pkgconfig ]] && rm -rf "$dir"
  step "configure examples ($mode)" cmake -S examples -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DREDLOCK_SOURCE_DIR="$root" "${args[@]}"
  step "build examples ($mode)" cmake --build "$dir" -j2
  readelf -d "$dir/readme_example" >"$log" 2>&1 || fail "readelf -d ($mode)"
  case $mode in
    package-shared | pkgconfig)
      grep -q "Shared library: \[$soname\]" "$log" || fail "the $mode example does not load $soname" ;;
    *)
      if grep -q 'Shared library: \[libredlock' "$log"; then fail "the $mode example loads libredlock"; fi ;;
  esac
done

# --- run them against a local cluster on 7001-7005 ----------------------------
# The ports are fixed by the README example; another run of that example
# (tests/integration/readme_example_test.cpp) may hold them for a moment.
for _ in 1 2 3 4 5 6; do
  if "$cluster_tool" --dir "$tmp/cluster" up 5 --base-port 7001 >"$log" 2>&1; then
    cluster_up=1
    break
  fi
  "$cluster_tool" --dir "$tmp/cluster" down >/dev/null 2>&1 || true
  sleep 5
done
[[ $cluster_up == 1 ]] || fail "could not start a 5-node cluster on ports 7001-7005 (taken?)"

for entry in "${modes[@]}"; do
  mode=${entry%%:*}
  dir=$examples_build/$mode
  timeout 60 "$dir/version_check" >"$log" 2>&1 || fail "version_check ($mode): headers and library differ"
  timeout 60 "$dir/readme_example" >"$log" 2>&1 || fail "readme_example ($mode) exited with $?"
  grep -qE '^[0-9a-f]{32} valid for [0-9]+ ms$' "$log" || fail "readme_example ($mode) printed no lock"
done
note "examples built and ran (exit 0): ${modes[*]%%:*}"

echo "check-install: ok"
printf '  %s\n' "${summary[@]}"
