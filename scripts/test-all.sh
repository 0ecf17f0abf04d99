#!/usr/bin/env bash
# `make test`: every stage of the suite, in two lanes side by side once the set-up is done.
#
# Lane 1: lint, sanity, unit, the integration and Prisma CLI suites (two workers each), the build;
# lane 2: the SSH fleet and the molecule scenarios. Both are mostly ansible-playbook work, so on two
# cores they share the CPU more than they overlap (a clean run: integration 2,969 s beside lane 2,
# 1,155 s alone); what the lanes buy is one run that reports every stage. Each stage's output goes to
# tests/output/stages/<stage>.log and, line by line with its name in front, to the terminal. A
# failed stage does not stop the others, so one run shows every failure; the run ends with a table
# of every stage's time and result and the end of each failed stage's log.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 2

lane1=(lint sanity unit integration compat build)
lane2=(fleet molecule)
logs=$repo/tests/output/stages
rm -rf "$logs"
mkdir -p "$logs"
start=$(date +%s)

# One stage: its log, its time and its exit status in $logs/<stage>.result.
run_stage() {
    local stage=$1 began status
    began=$(date +%s)
    make --no-print-directory "$stage" > >(tee "$logs/$stage.log" | sed -u "s/^/[$stage] /") 2>&1
    status=$?
    echo "$stage $(( $(date +%s) - began )) $status" > "$logs/$stage.result"
    return "$status"
}

run_lane() {
    local stage
    for stage in "$@"; do
        run_stage "$stage"
    done
}

# Set-up first, on its own: both lanes need the venv, the collection link, the Prisma CLI and pm2.
run_stage deps && run_stage prisma-cli && run_stage node-tools
setup_status=$?
if [ "$setup_status" -eq 0 ]; then
    run_lane "${lane1[@]}" &
    first=$!
    run_lane "${lane2[@]}" &
    second=$!
    wait "$first" "$second"
fi
run_stage leak-check

status=0
echo
printf '%-12s %8s  %s\n' stage seconds result
for stage in deps prisma-cli node-tools "${lane1[@]}" "${lane2[@]}" leak-check; do
    if [ -f "$logs/$stage.result" ]; then
        read -r _ seconds code < "$logs/$stage.result"
        printf '%-12s %8s  %s\n' "$stage" "$seconds" "$([ "$code" -eq 0 ] && echo ok || echo "FAILED (exit $code)")"
        [ "$code" -eq 0 ] || status=2
    else
        printf '%-12s %8s  %s\n' "$stage" - "not run"
        status=2
    fi
done
for stage in deps prisma-cli node-tools "${lane1[@]}" "${lane2[@]}" leak-check; do
    if [ -f "$logs/$stage.result" ] && [ "$(cut -d' ' -f3 "$logs/$stage.result")" != 0 ]; then
        echo
        echo "== the end of $stage's log ($logs/$stage.log)"
        tail -n 40 "$logs/$stage.log"
    fi
done
echo "make test: $(( $(date +%s) - start )) s, exit $status"
exit "$status"
