#!/usr/bin/env bash
# Build everything and run the C quickstart on SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null; then
  SUDO=""; if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq cmake
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
./build/quickstart "sqlite:build/quickstart.db?max_connections=4&timeout=5"
