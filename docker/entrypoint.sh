#!/bin/sh
# Entrypoint of the medical-notes API image.
#   serve (default): wait for PostgreSQL, seed and index what is missing (unless AUTO_INIT=false),
#                    then replace this shell with the server so that SIGTERM reaches uvicorn.
#   status | seed | index [--force]: run that medical_notes command directly.
#   anything else: run it as given (e.g. a shell for debugging).
# Environment: DATABASE_URL or DATABASE_URL_FILE (or PGHOST/PGPORT), AUTO_INIT (default true),
# FORCE_INIT (default false), FAISS_INDEX_DIR, DB_WAIT_ATTEMPTS (default 30), DB_WAIT_INTERVAL seconds
# (default 2). Secrets may come from files (*_FILE, see docs/security.md); the server checks its
# configuration (credentials, secret files) before anything else, so a bad one stops it at once.
set -eu

log() {
    printf '%s entrypoint: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >&2
}

is_true() {
    case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in
        1 | true | yes | on) return 0 ;;
        *) return 1 ;;
    esac
}

# Sets db_host and db_port from DATABASE_URL or the file DATABASE_URL_FILE names
# (scheme://user:password@host:port/db?options), falling back to PGHOST/PGPORT. Only host and port are
# kept, so the password is never printed, exported or passed on.
parse_database_address() {
    db_host=${PGHOST:-localhost}
    db_port=${PGPORT:-5432}
    database_url=${DATABASE_URL:-}
    if [ -z "$database_url" ] && [ -n "${DATABASE_URL_FILE:-}" ]; then
        database_url=$(cat -- "$DATABASE_URL_FILE")
    fi
    [ -n "$database_url" ] || return 0
    authority=${database_url#*://}
    authority=${authority%%/*}
    authority=${authority%%\?*}
    authority=${authority##*@}
    authority=${authority%%,*}
    case "$authority" in
        \[*\]:*)
            url_host=${authority%%]*}
            url_host=${url_host#\[}
            url_port=${authority##*]:}
            ;;
        \[*\])
            url_host=${authority#\[}
            url_host=${url_host%]}
            url_port=
            ;;
        *:*)
            url_host=${authority%%:*}
            url_port=${authority##*:}
            ;;
        *)
            url_host=$authority
            url_port=
            ;;
    esac
    [ -z "$url_host" ] || db_host=$url_host
    [ -z "$url_port" ] || db_port=$url_port
}

wait_for_postgres() {
    attempts=${DB_WAIT_ATTEMPTS:-30}
    interval=${DB_WAIT_INTERVAL:-2}
    attempt=1
    while [ "$attempt" -le "$attempts" ]; do
        if pg_isready --quiet --host="$db_host" --port="$db_port" --timeout=3; then
            log "PostgreSQL at $db_host:$db_port accepts connections"
            return 0
        fi
        log "waiting for PostgreSQL at $db_host:$db_port (attempt $attempt/$attempts)"
        attempt=$((attempt + 1))
        sleep "$interval"
    done
    log "error: PostgreSQL at $db_host:$db_port did not accept connections after $attempts attempts"
    exit 1
}

# Prints the value of a top-level integer field of the status JSON, or nothing when it is null.
status_number() {
    printf '%s\n' "$status_json" | sed -n "s/.*\"$1\": *\([0-9][0-9]*\).*/\1/p"
}

# Runs one medical_notes step (seed or index) and logs its JSON summary; stops on failure.
run_step() {
    step=$1
    shift
    if ! result=$(python -m medical_notes "$step" "$@"); then
        log "error: $step failed (see the message above); not starting"
        exit 1
    fi
    log "$step done: $result"
}

initialise() {
    force_flag=
    if is_true "${FORCE_INIT:-false}"; then
        force_flag=--force
        log "FORCE_INIT=true: refreshing the shipped notes and rebuilding the guideline index"
    fi

    if ! status_json=$(python -m medical_notes status); then
        log "error: could not read the service state (see the message above); not starting"
        exit 1
    fi

    documents=$(status_number documents)
    if [ -n "$force_flag" ] || [ "${documents:-0}" -eq 0 ]; then
        log "seeding the database with the shipped notes"
        run_step seed $force_flag
    else
        log "database already holds $documents documents; not seeding"
    fi

    index_file="${FAISS_INDEX_DIR:-/app/data/faiss_db}/index.faiss"
    if [ -n "$force_flag" ] || [ ! -f "$index_file" ]; then
        log "building the guideline index in ${index_file%/*}"
        run_step index $force_flag
    else
        log "guideline index present at $index_file; not rebuilding"
    fi
}

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    serve | -*)
        [ "$1" != serve ] || shift
        if ! python -m medical_notes serve --check-config "$@"; then
            log "error: invalid configuration (see the message above); not starting"
            exit 2
        fi
        parse_database_address
        wait_for_postgres
        if is_true "${AUTO_INIT:-true}"; then
            initialise
        else
            log "AUTO_INIT=false: skipping seeding and indexing"
        fi
        log "starting the API server"
        exec python -m medical_notes serve "$@"
        ;;
    status | seed | index)
        exec python -m medical_notes "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
