#!/usr/bin/env bash
# Tests of the Go binding: builds libpeepool (cargo build --release) when
# needed, installs Go with apt-get when missing, then runs go vet and
# go test -race against the in-tree include/ and target/release/.
# SQLite always; PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306)
# tests skip when unreachable, unless CI=true or PEEPOOL_REQUIRE_SERVERS=1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v go >/dev/null; then
  echo "bindings/go/test.sh: installing Go (golang-go)" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq golang-go >&2 || { $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq golang-go >&2; }
fi

(cd "$root" && cargo build --release)
lib="$root/target/release"
if [ ! -e "$lib/libpeepool.so.0" ]; then
  ln -sf libpeepool.so "$lib/libpeepool.so.0"
fi

export CGO_ENABLED=1
export CGO_CFLAGS="-I$root/include ${CGO_CFLAGS:-}"
export CGO_LDFLAGS="-L$lib ${CGO_LDFLAGS:-}"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

cd "$here"
go version
go vet ./...
go test -race -count=1 ./...
