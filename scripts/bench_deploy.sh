#!/usr/bin/env bash
# Deployment benchmark (make bench-deploy): prints how long the deployment steps take on this host.
#   1. cold deploy: site.yml after playbooks/clean.yml (no API image, no volumes; the base images
#      stay, see the README for their own build times). The API image is built without Docker's
#      layer cache, so layers left by other builds of the same Dockerfile do not shorten it.
#   2. warm no-op re-run of site.yml (aim: under 20 s)
#   3. force_init run (re-seed and re-index)
#   4. `docker restart` of both containers until the API is healthy again
# It DELETES the stack's data on this host (it runs clean.yml with medical_notes_clean_confirm=yes).
set -euo pipefail
cd "$(dirname "$0")/.."

playbook=${ANSIBLE_PLAYBOOK:-.venv/bin/ansible-playbook}
log_dir=${BENCH_LOG_DIR:-.cache/bench-deploy}
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
mkdir -p "$log_dir"

now() { date +%s.%N; }
elapsed() { awk -v start="$1" -v end="$2" 'BEGIN { printf "%.1f", end - start }'; }

# Runs a playbook quietly (output in $log_dir/<name>.log) and prints its seconds and recap counts.
timed_playbook() {
  local name=$1
  shift
  local start end recap
  start=$(now)
  if ! "$playbook" "$@" >"$log_dir/$name.log" 2>&1; then
    echo "FAILED: $playbook $* (see $log_dir/$name.log)" >&2
    tail -n 30 "$log_dir/$name.log" >&2
    exit 1
  fi
  end=$(now)
  recap=$(grep -E '^[^ ]+ +: ok=' "$log_dir/$name.log" | sed -E 's/ +/ /g' | cut -d' ' -f3-5)
  printf '%-34s %7s s   %s\n' "$name" "$(elapsed "$start" "$end")" "$recap"
}

api_health() {
  docker inspect --format '{{.State.Health.Status}}' medical_notes_api 2>/dev/null || echo missing
}

echo "medical-notes deployment benchmark on $(hostname) ($(nproc) cores), $(date -u +%FT%TZ)"
"$playbook" playbooks/clean.yml -e medical_notes_clean_confirm=yes >"$log_dir/clean.log" 2>&1
timed_playbook "cold deploy (site.yml)" site.yml -e medical_notes_build_nocache=true
timed_playbook "warm no-op re-run (site.yml)" site.yml
timed_playbook "force_init (site.yml)" site.yml -e medical_notes_force_init=true

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
health_ok() { curl -fsS -o /dev/null --cacert /opt/medical-notes/tls/ca.crt https://localhost:8000/health 2>/dev/null; }
docker_healthy() { [ "$(api_health)" = healthy ]; }

restarted_at=$(now)
docker restart medical_notes_postgres medical_notes_api >/dev/null
wait_for health_ok
health_ok_at=$(now)
wait_for docker_healthy
healthy_at=$(now)
printf '%-34s %7s s\n' "docker restart -> /health ok" "$(elapsed "$restarted_at" "$health_ok_at")"
printf '%-34s %7s s\n' "docker restart -> Docker 'healthy'" "$(elapsed "$restarted_at" "$healthy_at")"
echo "logs: $log_dir"
