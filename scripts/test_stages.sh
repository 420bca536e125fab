#!/usr/bin/env bash
# Runs the stages of `make test` (make targets) and prints how long each took, also when one fails
# (a lane stops at its first failure, as make would). A stage argument "a,b/c,d" runs lanes at the
# same time: a then b in one lane, c then d in another; each lane's output goes to its own log under
# .cache/test-stages and is printed whole when the lanes are done, so the output never interleaves.
# Only suites that share nothing (stack names, ports, image repositories, the daemon's state) run
# side by side. The last line is the count of passed and failed stages.
set -uo pipefail

logs=.cache/test-stages
results=$logs/results
mkdir -p "$logs"
: >"$results"
started=$SECONDS

# One lane: its stages one after the other; a line "stage seconds result" each in the results file.
run_lane() {
  local stage stage_started result
  for stage in "$@"; do
    stage_started=$SECONDS
    if "${MAKE:-make}" --no-print-directory "$stage"; then result=passed; else result=FAILED; fi
    echo "$stage $((SECONDS - stage_started)) $result" >>"$results"
    [ "$result" = passed ] || return 1
  done
}

failed=0
for spec in "$@"; do
  if [[ "$spec" != */* && "$spec" != *,* ]]; then
    run_lane "$spec" || failed=1
  else
    IFS=/ read -r -a lanes <<<"$spec"
    pids=()
    for i in "${!lanes[@]}"; do
      IFS=, read -r -a stages <<<"${lanes[$i]}"
      run_lane "${stages[@]}" >"$logs/lane-$i.log" 2>&1 &
      pids+=($!)
    done
    for i in "${!pids[@]}"; do
      wait "${pids[$i]}" || failed=1
      echo "---- lane $((i + 1)) of $spec ----"
      cat "$logs/lane-$i.log"
    done
  fi
  [ "$failed" -eq 0 ] || break
done

printf '\n%-20s %8s  %s\n' "stage" "seconds" "result"
while read -r stage seconds result; do
  printf '%-20s %8d  %s\n' "$stage" "$seconds" "$result"
done <"$results"
total=$((SECONDS - started))
printf '%-20s %8d  (%d min %02d s)\n' "total" "$total" $((total / 60)) $((total % 60))
printf 'stages: %d passed, %d failed\n' "$(grep -c ' passed$' "$results")" "$(grep -c ' FAILED$' "$results")"
exit "$failed"
