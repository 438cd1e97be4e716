#!/usr/bin/env bash
# A long fuzzing run of every parser of user or network input: the property tests CI runs
# briefly (api/tests/parser_props.rs, runner/tests/parser_props.rs, runner/tests/arch_props.rs),
# with many cases, round after round with fresh random seeds, until the time is up.
#
#   scripts/fuzz.sh [MINUTES] [CASES]     default 60 minutes, 2,000 cases per property per round
#
# A failing case is shrunk by proptest and kept beside its test file (<test>.proptest-regressions),
# which every later run (CI's too) replays first: commit it with the fix. Writes one line per
# round and a closing summary to stderr and to bench/out/fuzz.log.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
minutes=${1:-60}
cases=${2:-2000}
scripts/bootstrap-libtorch.sh
mkdir -p bench/out
log=bench/out/fuzz.log
targets=(-p nas-api --test parser_props -p nas-runner --test parser_props --test arch_props)
cargo test --locked --no-run "${targets[@]}"  # a build error shows here, not as a silent exit
end=$(( $(date +%s) + minutes * 60 ))
round=0
failed=0
echo "fuzz: $(date -u +%FT%TZ), ${minutes} min, ${cases} cases per property per round" | tee -a "$log" >&2
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  started=$(date +%s)
  if out=$(PROPTEST_CASES=$cases cargo test --locked -q "${targets[@]}" -- --test-threads=2 2>&1); then
    echo "fuzz: round $round passed in $(( $(date +%s) - started )) s" | tee -a "$log" >&2
  else
    failed=$((failed + 1))
    echo "fuzz: round $round FAILED:" | tee -a "$log" >&2
    grep -E "panicked|minimal failing input|FAILED|test result" <<<"$out" | tee -a "$log" >&2 || true
  fi
done
echo "fuzz: $round rounds, $failed failed" | tee -a "$log" >&2
[ "$failed" = 0 ]
