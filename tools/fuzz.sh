#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang into ./build-fuzz and runs each for a
# bounded time on a copy of its seed corpus, so the tree stays clean. Exits non-zero when a
# target crashes or fails a check, naming the saved input and the command that reproduces it.
#
#   bash tools/fuzz.sh                       # 60 s in all, shared by the targets
#   FUZZ_SECONDS=600 bash tools/fuzz.sh      # a longer run
#   bash tools/fuzz.sh fuzz_cursor           # some targets only
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(fuzz_cursor fuzz_fact_validation fuzz_json_value fuzz_key_encoding fuzz_reply_reader
    fuzz_text_validation fuzz_validation)
fi
total=${FUZZ_SECONDS:-60}
each=$((total / ${#targets[@]}))
((each >= 1)) || each=1
build=build-fuzz

cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DONESTORY_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" "${targets[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/onestory-fuzz.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/corpus/"
  echo "== $t: ${each}s"
  status=0
  "$build/tests/fuzz/$t" -max_total_time="$each" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" \
    >"$work/$t/log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log")
  cov=$(grep -o 'cov: [0-9]*' "$work/$t/log" | tail -1 || true)
  echo "   ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?}"
  if ((status != 0)); then
    failed+=("$t")
    grep -E 'FUZZ_CHECK|ERROR:|SUMMARY:|runtime error|^ +#[0-9]+ ' "$work/$t/log" | head -24 |
      sed 's/^/   /'
    for input in "$work/$t"/artifacts/*; do
      [[ -e "$input" ]] || continue
      echo "   input: $input"
      echo "   reproduce: $PWD/$build/tests/fuzz/$t $input"
    done
    echo "   log: $work/$t/log"
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (inputs and logs kept in $work)"
  exit 1
fi
rm -rf "$work"
echo "fuzz: ${#targets[@]} targets, ${each}s each, no crash"
