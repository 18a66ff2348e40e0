#!/bin/sh
# tests/consumers/run.sh <build-dir>
#
# Installs the build into a temporary prefix, checks the installed tree,
# then builds and runs two out-of-tree consumers against it:
#   - cmake/: find_package(peepool) with peepool::peepool, peepool::static
#     and a C++ program using peepool.hpp;
#   - consumer.c built with `cc $(pkg-config --cflags --libs peepool)`.
# Environment: CMAKE, CC, CXX (default cmake, cc, c++); KEEP=1 keeps the
# temporary directory.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 <build-dir>" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
CMAKE=${CMAKE:-cmake}
CC=${CC:-cc}
CXX=${CXX:-c++}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/peepool-consumers.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "keeping $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi
prefix=$tmp/prefix
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

echo "== cmake --install $build --prefix $prefix"
"$CMAKE" --install "$build" --prefix "$prefix"

# The library directory is GNUInstallDirs' (lib, lib64, ...): find it by the .pc.
pc=$(find "$prefix" -name peepool.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no peepool.pc installed"
libdir=$(dirname "$(dirname "$pc")")
echo "== libdir: $libdir"
[ -f "$libdir/libpeepool.so.0" ] && [ ! -L "$libdir/libpeepool.so.0" ] || fail "libpeepool.so.0 is not a file"
[ -L "$libdir/libpeepool.so" ] || fail "libpeepool.so is not a symlink"
[ "$(readlink "$libdir/libpeepool.so")" = libpeepool.so.0 ] || fail "libpeepool.so does not point to libpeepool.so.0"
[ -f "$libdir/libpeepool.a" ] || fail "no libpeepool.a"
[ -f "$prefix/include/peepool.h" ] || fail "no include/peepool.h"
[ -f "$prefix/include/peepool.hpp" ] || fail "no include/peepool.hpp"
[ -f "$libdir/cmake/peepool/peepoolConfig.cmake" ] || fail "no peepoolConfig.cmake"
[ -f "$libdir/cmake/peepool/peepoolConfigVersion.cmake" ] || fail "no peepoolConfigVersion.cmake"
if command -v readelf >/dev/null 2>&1; then
    readelf -d "$libdir/libpeepool.so.0" | grep -q 'SONAME.*\[libpeepool\.so\.0\]' || fail "SONAME is not libpeepool.so.0"
fi

echo "== CMake consumer (find_package)"
"$CMAKE" -S "$here/cmake" -B "$tmp/cmake-build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
"$CMAKE" --build "$tmp/cmake-build"
# CMake gives its build tree a RUNPATH to the prefix's lib; no LD_LIBRARY_PATH.
"$tmp/cmake-build/app"
"$tmp/cmake-build/app_static"
"$tmp/cmake-build/app_cpp"
# The shared one really uses the installed library.
if command -v ldd >/dev/null 2>&1; then
    ldd "$tmp/cmake-build/app" | grep -q "$libdir/libpeepool.so.0" || fail "app does not load $libdir/libpeepool.so.0"
fi

echo "== pkg-config consumer"
command -v pkg-config >/dev/null 2>&1 || fail "pkg-config not found"
PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
echo "pkg-config --cflags --libs peepool: $(pkg-config --cflags --libs peepool)"
[ "$(pkg-config --modversion peepool)" = "$(sed -n 's/^#define PEEPOOL_VERSION_STRING "\(.*\)"/\1/p' "$prefix/include/peepool.h")" ] \
    || fail "peepool.pc version differs from the header's"
# shellcheck disable=SC2046 # word splitting of pkg-config's output is meant
"$CC" -std=c99 -Wall -Wextra -Wpedantic -Werror -o "$tmp/consumer_pc" "$here/consumer.c" \
    $(pkg-config --cflags --libs peepool)
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/consumer_pc"

echo "install_consumers: ok"
