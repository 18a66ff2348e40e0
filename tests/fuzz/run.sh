#!/usr/bin/env bash
# Build the url_options fuzz target (cargo-fuzz, nightly, libFuzzer with
# AddressSanitizer) and run it for a bounded time; a crash, a failed
# invariant or a leak fails the script, and libFuzzer saves the input under
# tests/fuzz/artifacts/url_options/ (replay: cargo +nightly fuzz run
# --fuzz-dir tests/fuzz url_options <file>).
#
#   tests/fuzz/run.sh [seconds]      default 60 (what the test command runs)
#   tests/fuzz/run.sh 3600           a long run; new inputs it finds accumulate
#                                    in tests/fuzz/corpus/url_options.run/ (not committed)
#   FUZZ_JOBS=2 tests/fuzz/run.sh 3600   the same on two cores
#   FUZZ_SEED=0 tests/fuzz/run.sh 3600   a random seed (the default, 1, makes
#                                    the test command's run the same input
#                                    sequence every time: a slower machine
#                                    runs a prefix of it)
#
# Installs the nightly toolchain and cargo-fuzz when they are missing. The
# instrumented build (~7 min of CPU the first time) goes to
# PEEPOOL_FUZZ_TARGET_DIR, by default ~/.cache/peepool/fuzz-target, so that
# fresh clones on the same machine (CI) rebuild only peepool itself.
set -euo pipefail
secs=${1:-60}
cd "$(dirname "$0")/../.."
fuzz_dir=tests/fuzz
target_dir=${PEEPOOL_FUZZ_TARGET_DIR:-$HOME/.cache/peepool/fuzz-target}
mkdir -p "$target_dir"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

start=$(date +%s)
cargo +nightly fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" url_options
echo "fuzz build: $(($(date +%s) - start)) s"

# libFuzzer writes new inputs to the first directory and only reads the
# committed seeds in the second. Absolute paths: the target changes into a
# temporary directory.
root=$(pwd)
work=$root/$fuzz_dir/corpus/url_options.run
mkdir -p "$work" "$root/$fuzz_dir/artifacts/url_options"
jobs=${FUZZ_JOBS:-1}
extra=()
if [ "$jobs" -gt 1 ]; then
  extra=(-jobs="$jobs" -workers="$jobs")
fi
cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" url_options "$work" "$root/$fuzz_dir/corpus/url_options" -- \
  -max_total_time="$secs" -seed="${FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -print_final_stats=1 -artifact_prefix="$root/$fuzz_dir/artifacts/url_options/" "${extra[@]}"
echo "fuzz run: no crash in ${secs} s"
