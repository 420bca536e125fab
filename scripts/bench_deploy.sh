#!/usr/bin/env bash
# Deployment benchmark (make bench-deploy): prints how long the deployment steps take on this host and
# how much throughput Docker's published port keeps. It deploys a stack of its own (tests/bench:
# stack mn_bench, 127.0.0.1:18470, /opt/mn-bench; MN_BENCH_STACK and MN_BENCH_PORT move it), never
# the default stack, and removes it at the end with the label-checked clean (playbooks/clean.yml).
#   1. cold deploy: site.yml on a host without the bench stack (base images stay). The API image is
#      built without Docker's layer cache, so layers of other builds do not shorten it.
#   2. no-op re-run of site.yml, BENCH_NOOP_RUNS times (aim: at most 10 s), with the CPU seconds the
#      run used, since the wall time on a shared host depends on the load; each time with the default
#      strategy (Ansible's linear) and then with the opt-in one (FAST=1: Mitogen, plugins/strategy)
#   3. force_init run (re-seed and re-index)
#   4. `docker restart` of PostgreSQL and the API until the API is healthy again
#   5. GET /documents/{id} with keep-alive (wrk): the container's bridge address against the published
#      port, HTTPS through the TLS proxy (the default), then plain HTTP (TLS off); aim: the published
#      port at least 85% of the container address. For comparison, the same through Docker's userland
#      proxy (docker-proxy, what dockerd runs for a published port unless daemon.json says
#      "userland-proxy": false), started by this script on port+1 and stopped again.
#   6. the simulated cluster of inventory/local-cluster.yml (database, two API instances, load
#      balancer; stack mn_bench_cl, ports +600, /opt/mn-bench-cl-*): deploy, then the no-op re-run
#      BENCH_CLUSTER_NOOP_RUNS times with each strategy (aim: at most 20 s); removed at the end like
#      the single-host stack
# BENCH_SKIP_COLD=1 skips 1 (and 3, 4) and deploys with the layer cache. BENCH_SINGLE=0 skips 1-5,
# BENCH_CLUSTER=0 skips 6. BENCH_NICE=1 runs wrk,
# docker-proxy and the bench stack's container processes at nice -10 during 5, for steadier numbers
# on a host busy with other work. wrk comes from Debian (wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

playbook=${ANSIBLE_PLAYBOOK:-.venv/bin/ansible-playbook}
log_dir=${BENCH_LOG_DIR:-.cache/bench-deploy}
noop_runs=${BENCH_NOOP_RUNS:-3}
wrk_duration=${BENCH_WRK_DURATION:-4}
wrk_connections=${BENCH_WRK_CONNECTIONS:-8}
wrk_rounds=${BENCH_WRK_ROUNDS:-5}
priority=()
if [ "${BENCH_NICE:-0}" = 1 ]; then
  priority=(nice -n -10)
fi
export MN_BENCH_STACK=${MN_BENCH_STACK:-mn_bench}
# The simulated cluster's stack (inventory/local-cluster.yml reads MN_CLUSTER_*): a test stack of its
# own, with an API image repository of its own so that its clean removes only its tag.
export MN_CLUSTER_STACK=${MN_BENCH_CLUSTER_STACK:-mn_bench_cl}
export MN_CLUSTER_PORT_OFFSET=${MN_BENCH_CLUSTER_PORT_OFFSET:-600}
export MN_CLUSTER_TEST=true
cluster_noop_runs=${BENCH_CLUSTER_NOOP_RUNS:-2}
cluster_inventory=inventory/local-cluster.yml
# What `make ... FAST=1` sets: the opt-in strategy. The default runs with neither variable.
unset ANSIBLE_STRATEGY ANSIBLE_STRATEGY_PLUGINS
fast=(ANSIBLE_STRATEGY_PLUGINS="$PWD/plugins/strategy" ANSIBLE_STRATEGY=mitogen_linear)
cluster_args=(-e "medical_notes_api_image_name=$MN_CLUSTER_STACK/api")
export MN_BENCH_PORT=${MN_BENCH_PORT:-18470}
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
single_inventory=tests/bench/hosts.yml
inventory=$single_inventory
stack=$MN_BENCH_STACK
port=$MN_BENCH_PORT
base_dir=/opt/${stack//_/-}
mkdir -p "$log_dir"

command -v wrk >/dev/null || { echo "bench-deploy: needs wrk (apt-get install wrk)" >&2; exit 1; }
PATH=$PATH:/usr/sbin:/usr/libexec/docker
command -v docker-proxy >/dev/null || { echo "bench-deploy: needs Docker's docker-proxy" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v start="$1" -v end="$2" 'BEGIN { printf "%.1f", end - start }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Runs a playbook on the bench inventory ($inventory) quietly (output in $log_dir/<log>.log); prints
# its wall seconds, the CPU seconds of ansible-playbook and everything it started, and the recap
# counts (of every host: the cluster has four). The wall seconds are left in $last_seconds.
timed_playbook() {
  local name=$1 log=$2
  shift 2
  local start end recap cpu TIMEFORMAT='%U %S'
  start=$(now)
  if ! { time "$playbook" -i "$inventory" "$@" >"$log_dir/$log.log" 2>&1; } 2>"$log_dir/$log.cpu"; then
    echo "FAILED: $playbook -i $inventory $* (see $log_dir/$log.log)" >&2
    tail -n 30 "$log_dir/$log.log" >&2
    exit 1
  fi
  end=$(now)
  last_seconds=$(elapsed "$start" "$end")
  cpu=$(awk 'END { printf "%.1f", $1 + $2 }' "$log_dir/$log.cpu")
  recap=$(grep -E '^[^ ]+ +: ok=' "$log_dir/$log.log" | tr '=' ' ' | awk '
    { ok += $4; changed += $6; unreachable += $8; hosts++ }
    END { printf "ok=%d changed=%d unreachable=%d", ok, changed, unreachable; if (hosts > 1) printf " (%d hosts)", hosts }')
  printf '%-36s %7s s  (CPU %5s s)   %s\n' "$name" "$last_seconds" "$cpu" "$recap"
}

userland_proxy_pid=
stop_userland_proxy() {
  if [ -n "$userland_proxy_pid" ]; then
    kill "$userland_proxy_pid" 2>/dev/null || true
    wait "$userland_proxy_pid" 2>/dev/null || true
    userland_proxy_pid=
  fi
}

clean_stack() {
  stop_userland_proxy
  "$playbook" -i "$single_inventory" playbooks/clean.yml -e medical_notes_clean_confirm=yes \
    >"$log_dir/clean.log" 2>&1 || { echo "bench-deploy: clean failed, see $log_dir/clean.log" >&2; return 1; }
}
clean_cluster() {
  if [ "${BENCH_CLUSTER:-1}" = 1 ]; then
    "$playbook" -i "$cluster_inventory" playbooks/clean.yml -e medical_notes_clean_confirm=yes "${cluster_args[@]}" \
      >"$log_dir/clean-cluster.log" 2>&1 || { echo "bench-deploy: cluster clean failed, see $log_dir/clean-cluster.log" >&2; return 1; }
  fi
}
clean_all() {
  if [ "${BENCH_SINGLE:-1}" = 1 ]; then
    clean_stack
  fi
  clean_cluster
}
trap clean_all EXIT

container_ip() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }

# Requests/s of one wrk run; a run with socket errors or non-2xx answers fails the benchmark.
wrk_rps() {
  local output
  output=$("${priority[@]}" wrk -t1 -c"$wrk_connections" -d"${wrk_duration}s" -H "Authorization: Bearer $token" "$1")
  if grep -qE 'Socket errors|Non-2xx' <<<"$output"; then
    echo "bench-deploy: errors from wrk $1:" >&2
    echo "$output" >&2
    exit 1
  fi
  awk '/^Requests\/sec:/ { print $2 }' <<<"$output"
}

# Prints the median requests/s of one address over the rounds, and with a baseline the median of
# the per-round ratios (each round measures the variants back to back, so a change of the host's
# load between rounds cancels out of the ratio).
report_variant() {
  local label=$1 url=$2 runs=$3 baseline_runs=${4:-} rps
  rps=$(tr ' ' '\n' <<<"$runs" | median)
  printf '%-31s %-36s %7.0f req/s' "$label" "$url" "$rps"
  if [ -n "$baseline_runs" ]; then
    paste -d' ' <(tr ' ' '\n' <<<"$runs") <(tr ' ' '\n' <<<"$baseline_runs") \
      | awk '{ print $1 / $2 }' | median | awk '{ printf "  %4.0f%%", 100 * $1 }'
  else
    printf '  %5s' ""
  fi
  printf '   (runs: %s)\n' "$runs"
}

# Container address, published port and (same container port) Docker's userland proxy on port+1,
# back to back in each of $wrk_rounds rounds; prints each median and its share of the container
# address (the aim is for the published port).
compare_addresses() {
  local label=$1 container_ip=$2 container_port=$3 scheme=$4 direct published userland
  local direct_runs=() published_runs=() userland_runs=()
  direct="$scheme://$container_ip:$container_port$path"
  published="$scheme://127.0.0.1:$port$path"
  userland="$scheme://127.0.0.1:$((port + 1))$path"
  if [ "${#priority[@]}" -gt 0 ]; then
    # With TLS off there is no proxy container.
    for container in "${stack}_api" "${stack}_proxy" "${stack}_postgres"; do
      if docker container inspect "$container" >/dev/null 2>&1; then
        docker top "$container" -eo pid | tail -n +2 | xargs -r renice -n -10 -p >/dev/null
      fi
    done
  fi
  "${priority[@]}" docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port $((port + 1)) \
    -container-ip "$container_ip" -container-port "$container_port" 3>/dev/null 2>/dev/null &
  userland_proxy_pid=$!
  for url in "$direct" "$published" "$userland"; do
    wrk_duration=2 wrk_rps "$url" >/dev/null
  done
  for ((round = 0; round < wrk_rounds; round++)); do
    direct_runs+=("$(wrk_rps "$direct")")
    published_runs+=("$(wrk_rps "$published")")
    userland_runs+=("$(wrk_rps "$userland")")
  done
  stop_userland_proxy
  report_variant "$label container address" "$direct" "${direct_runs[*]}"
  report_variant "$label published port (iptables)" "$published" "${published_runs[*]}" "${direct_runs[*]}"
  report_variant "$label via docker-proxy" "$userland" "${userland_runs[*]}" "${direct_runs[*]}"
}

echo "medical-notes deployment benchmark on $(hostname) ($(nproc) cores), $(date -u +%FT%TZ)," \
  "stack $stack on 127.0.0.1:$port"
echo "Docker userland proxy: $(pgrep -c -x docker-proxy || true) docker-proxy processes;" \
  "daemon.json: $(tr -d ' \n' </etc/docker/daemon.json 2>/dev/null || echo none)"
# 1-5: the single-host stack of tests/bench.
single_host_benchmark() {
  if [ "${BENCH_SKIP_COLD:-0}" = 1 ]; then
    timed_playbook "deploy (site.yml, layer cache)" deploy site.yml
  else
    timed_playbook "cold deploy (site.yml)" cold site.yml -e medical_notes_build_nocache=true
  fi

  noop_seconds=()
  fast_seconds=()
  for ((run = 1; run <= noop_runs; run++)); do
    echo "load average before no-op run $run: $(cut -d' ' -f1-3 /proc/loadavg)"
    timed_playbook "no-op re-run $run (site.yml)" "noop-$run" site.yml
    noop_seconds+=("$last_seconds")
    export "${fast[@]}"
    timed_playbook "no-op re-run $run, FAST=1" "noop-fast-$run" site.yml
    unset ANSIBLE_STRATEGY ANSIBLE_STRATEGY_PLUGINS
    fast_seconds+=("$last_seconds")
  done
  printf '%-36s %7s s\n' "no-op re-run FAST=1, median of $noop_runs" \
    "$(printf '%s\n' "${fast_seconds[@]}" | median)"
  printf '%-36s %7s s   (aim: at most 10 s)\n' "no-op re-run, median of $noop_runs" \
    "$(printf '%s\n' "${noop_seconds[@]}" | median)"
  timed_playbook "no-op re-run --check" check site.yml --check

  if [ "${BENCH_SKIP_COLD:-0}" != 1 ]; then
    timed_playbook "force_init (site.yml)" force-init site.yml -e medical_notes_force_init=true

    # Polls until the command succeeds; gives up after 300 s.
    wait_for() {
      local deadline=$((SECONDS + 300))
      until "$@"; do
        if ((SECONDS > deadline)); then
          echo "timed out waiting for: $*" >&2
          exit 1
        fi
        sleep 0.2
      done
    }
    health_ok() { curl -fsS -o /dev/null --cacert "$base_dir/tls/ca.crt" "https://localhost:$port/health" 2>/dev/null; }
    docker_healthy() { [ "$(docker inspect --format '{{.State.Health.Status}}' "${stack}_api" 2>/dev/null)" = healthy ]; }
    restarted_at=$(now)
    docker restart "${stack}_postgres" "${stack}_api" >/dev/null
    wait_for health_ok
    health_ok_at=$(now)
    wait_for docker_healthy
    healthy_at=$(now)
    printf '%-36s %7s s\n' "docker restart -> /health ok" "$(elapsed "$restarted_at" "$health_ok_at")"
    printf '%-36s %7s s\n' "docker restart -> Docker 'healthy'" "$(elapsed "$restarted_at" "$healthy_at")"
  fi

  token=$(cat "$base_dir/secrets/api_token")
  api_ip=$(container_ip "${stack}_api")
  document_id=$(curl -fsS -H "Authorization: Bearer $token" "http://$api_ip:8000/documents" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[0])')
  path=/documents/$document_id
  echo "GET $path, wrk -t1 -c$wrk_connections -d${wrk_duration}s, keep-alive, $wrk_rounds rounds," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "(aim: the published port at least 85% of the container address)"
  compare_addresses HTTPS "$(container_ip "${stack}_proxy")" 8443 https

  timed_playbook "switch TLS off (site.yml)" tls-off site.yml -e medical_notes_tls_enabled=false
  compare_addresses HTTP "$(container_ip "${stack}_api")" 8000 http
  clean_stack
}

# 6: the simulated cluster, a no-op re-run with four hosts (one of them runs the API play after the other).
cluster_benchmark() {
  local runs=() fast_runs=() run
  inventory=$cluster_inventory
  clean_cluster
  timed_playbook "cluster deploy (site.yml, 4 hosts)" cluster-deploy site.yml "${cluster_args[@]}"
  for ((run = 1; run <= cluster_noop_runs; run++)); do
    echo "load average before cluster no-op run $run: $(cut -d' ' -f1-3 /proc/loadavg)"
    timed_playbook "cluster no-op re-run $run (site.yml)" "cluster-noop-$run" site.yml "${cluster_args[@]}"
    runs+=("$last_seconds")
    export "${fast[@]}"
    timed_playbook "cluster no-op re-run $run, FAST=1" "cluster-noop-fast-$run" site.yml "${cluster_args[@]}"
    unset ANSIBLE_STRATEGY ANSIBLE_STRATEGY_PLUGINS
    fast_runs+=("$last_seconds")
  done
  printf '%-36s %7s s\n' "cluster no-op FAST=1, median of $cluster_noop_runs" \
    "$(printf '%s\n' "${fast_runs[@]}" | median)"
  printf '%-36s %7s s   (aim: at most 20 s)\n' "cluster no-op re-run, median of $cluster_noop_runs" \
    "$(printf '%s\n' "${runs[@]}" | median)"
  clean_cluster
}

if [ "${BENCH_SINGLE:-1}" = 1 ]; then
  clean_stack
  single_host_benchmark
fi
if [ "${BENCH_CLUSTER:-1}" = 1 ]; then
  cluster_benchmark
fi
echo "logs: $log_dir"
