#!/usr/bin/env bash
# Runs the fuzz targets one after the other, each for N seconds (default 600), and stops at the
# first crash, timeout or out-of-memory. Never part of CI (see "Fuzzing" in the README).
#
#   fuzz/run.sh [seconds] [target...]       e.g. fuzz/run.sh 30          (a quick smoke)
#                                                fuzz/run.sh 600 sse scope
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Everything
# runs under `nice -n 19`, one libFuzzer process at a time, so a shared machine stays usable.
# Corpora grow in fuzz/corpus/TARGET (the committed seeds in fuzz/seeds/TARGET are read too),
# crashes land in fuzz/artifacts/TARGET, each run's full output in fuzz/logs/TARGET.log.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ_DIR/.."

SECONDS_PER_TARGET="${1:-600}"
shift || true
[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [seconds] [target...]" >&2; exit 2; }
if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cd "$FUZZ_DIR/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//')
fi

nice -n 19 cargo +nightly fuzz build

mkdir -p "$FUZZ_DIR/logs"
for target in "${targets[@]}"; do
    corpus=("$FUZZ_DIR/corpus/$target")
    mkdir -p "${corpus[0]}"
    [[ -d $FUZZ_DIR/seeds/$target ]] && corpus+=("$FUZZ_DIR/seeds/$target")
    options=(-max_total_time="$SECONDS_PER_TARGET" -jobs=1 -workers=1 -rss_limit_mb=2048)
    case $target in
        mcp_message | sse | registration) options+=(-dict="$FUZZ_DIR/dicts/json.dict") ;;
    esac
    log="$FUZZ_DIR/logs/$target.log"
    echo "== $target: ${SECONDS_PER_TARGET}s" >&2
    start=$SECONDS
    status=0
    # -jobs=1 runs libFuzzer in a child process whose output goes to fuzz-0.log in the working
    # directory; run it in the logs directory so nothing lands in the tree.
    (cd "$FUZZ_DIR/logs" && nice -n 19 cargo +nightly fuzz run --fuzz-dir "$FUZZ_DIR" "$target" \
        "${corpus[@]}" -- "${options[@]}") >"$log" 2>&1 || status=$?
    elapsed=$((SECONDS - start))
    last="$(grep -aE '^#[0-9]+' "$log" | tail -1 || true)"
    line="$target: ${elapsed}s, ${last:-no progress line}"
    if ((status != 0)) || grep -aqE '^(==[0-9]+==ERROR|SUMMARY: libFuzzer|artifact_prefix=.*Test unit written)' "$log"; then
        echo "FAIL $line"
        echo "$target failed (status $status); the output is in $log:" >&2
        grep -aE 'panicked|ERROR|SUMMARY|Test unit written|Base64' "$log" | tail -15 >&2 || true
        exit 1
    fi
    echo "ok   $line"
done
