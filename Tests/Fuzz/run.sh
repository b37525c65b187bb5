#!/usr/bin/env bash
# Fuzzes the lab's readers with libFuzzer: the IDX reader (plain and gzip), the experiment-file
# parser, the fixture reader and the results-file reader. Each target starts from the
# repository's own files, and first replays every input kept in `regressions/TARGET/` (inputs
# that once crashed a reader, now fixed). A crash stops the script with a non-zero status and
# leaves the input in the working folder it prints.
#
# Usage: Tests/Fuzz/run.sh [SECONDS_PER_TARGET]   (default 12; five targets)
set -euo pipefail
cd "$(dirname "$0")"
FUZZ=$PWD
ROOT=$(cd ../.. && pwd)
SECONDS_PER_TARGET=${1:-12}

swift build -c release --sanitize=fuzzer --product FuzzTargets
BINARY=$FUZZ/.build/release/FuzzTargets

# libFuzzer, not Swift's backtracer, must catch a crash, to write its input down.
export SWIFT_BACKTRACE=enable=no

WORK=$(mktemp -d /tmp/normlab-fuzz.XXXXXX)
trap 'status=$?; [ $status = 0 ] && rm -rf "$WORK" || echo "inputs and logs kept in $WORK" >&2' EXIT

# Seed corpora from the repository's files.
mkdir -p "$WORK"/seeds/{idx,idx-gzip,experiment,fixture,results}
printf '\000\000\010\003\000\000\000\002\000\000\000\002\000\000\000\002abcdefgh' >"$WORK/seeds/idx/images"
printf '\000\000\010\001\000\000\000\003\001\002\003' >"$WORK/seeds/idx/labels"
for file in "$ROOT"/data/fashion-mnist/*.gz; do
  gunzip -c "$file" | head -c 600 >"$WORK/seeds/idx/$(basename "$file" .gz)" || true
done
for file in "$WORK"/seeds/idx/*; do gzip -c "$file" >"$WORK/seeds/idx-gzip/$(basename "$file").gz"; done
cp "$ROOT"/experiments/*.json "$WORK/seeds/experiment/"
cp "$ROOT"/Tests/Fixtures/normalizers/*.json "$WORK/seeds/fixture/"
for file in "$ROOT"/results/*.jsonl; do head -n 4 "$file" >"$WORK/seeds/results/$(basename "$file")"; done

for target in idx idx-gzip experiment fixture results; do
  corpus=$WORK/corpus/$target
  mkdir -p "$corpus" "$WORK/crashes/$target"
  regressions=$FUZZ/regressions/$target
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    NORMLAB_FUZZ_TARGET=$target "$BINARY" "$regressions"/* >"$WORK/$target-regressions.log" 2>&1 \
      || { echo "fuzz $target: a kept input crashes the reader again" >&2; tail -n 30 "$WORK/$target-regressions.log" >&2; exit 1; }
  fi
  dictionary=()
  case $target in experiment|fixture|results) dictionary=(-dict="$FUZZ/json.dict") ;; esac
  if ! NORMLAB_FUZZ_TARGET=$target "$BINARY" "$corpus" "$WORK/seeds/$target" "${dictionary[@]}" \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
      -artifact_prefix="$WORK/crashes/$target/" -print_final_stats=1 >"$WORK/$target.log" 2>&1; then
    echo "fuzz $target: a crash; the input is in $WORK/crashes/$target" >&2
    tail -n 40 "$WORK/$target.log" >&2
    exit 1
  fi
  echo "fuzz $target: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/$target.log" | grep -o '[0-9]*$') inputs in ${SECONDS_PER_TARGET} s, no crash"
done
