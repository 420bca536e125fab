#!/usr/bin/env bash
# Runs the stages of `make test` (make targets) one after the other and prints how long each took,
# also when one fails (the run stops at the first failure, as make would). The last line is the
# count of passed and failed stages.
set -uo pipefail

names=()
seconds=()
results=()
failed=0
started=$SECONDS
for stage in "$@"; do
  stage_started=$SECONDS
  if "${MAKE:-make}" --no-print-directory "$stage"; then
    results+=(passed)
  else
    results+=(FAILED)
    failed=1
  fi
  names+=("$stage")
  seconds+=($((SECONDS - stage_started)))
  [ "$failed" -eq 0 ] || break
done

printf '\n%-20s %8s  %s\n' "stage" "seconds" "result"
for i in "${!names[@]}"; do
  printf '%-20s %8d  %s\n' "${names[$i]}" "${seconds[$i]}" "${results[$i]}"
done
total=$((SECONDS - started))
printf '%-20s %8d  (%d min %02d s)\n' "total" "$total" $((total / 60)) $((total % 60))
passed=$(printf '%s\n' "${results[@]}" | grep -c '^passed$')
printf 'stages: %d passed, %d failed\n' "$passed" "$failed"
exit "$failed"
