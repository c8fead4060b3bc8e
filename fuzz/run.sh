#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after the
# other on one core, and prints the executions per target. Crashes land in
# `artifacts/<target>/`; the corpora grow in `corpus/<target>/` (both
# ignored by git; the committed seeds are in `seeds/<target>/`).
#
#   fuzz/run.sh 120          # two minutes per target
#   TARGETS="policy webhook" fuzz/run.sh 30
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
targets=(${TARGETS:-policy scenario handshake webhook portal_form audit_entry})
# No sanitizer (the crates forbid `unsafe`; memory safety is the compiler's),
# debug assertions on (overflow checks), one job: the machine is shared.
flags=(--sanitizer none --debug-assertions)
cargo +nightly fuzz build "${flags[@]}" || exit 2
total=0
failed=0
printf '%-12s %12s %10s  %s\n' target execs exec/s result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="target/run-$t.log"
    cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    result=ok
    if [ "$status" -ne 0 ]; then
        result="FAILED (see $log and artifacts/$t/)"
        failed=$((failed + 1))
    fi
    printf '%-12s %12s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
    total=$((total + ${execs:-0}))
done
printf '%-12s %12s\n' total "$total"
[ "$failed" -eq 0 ]
