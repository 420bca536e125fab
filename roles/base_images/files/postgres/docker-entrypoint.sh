#!/usr/bin/env bash
# Entrypoint of the PostgreSQL image built from Debian packages. It follows the official image's
# contract: POSTGRES_USER (default postgres), POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (required
# for a new cluster),
# POSTGRES_DB (default POSTGRES_USER), POSTGRES_INITDB_ARGS, PGDATA, scripts in
# /docker-entrypoint-initdb.d on first start, and the server running as the postgres user.
set -Eeuo pipefail

log() {
    printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2
}

# Runs as root: make the (possibly fresh) volume belong to postgres, then continue as postgres.
claim_directories_and_drop_root() {
    mkdir -p "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    chown postgres:postgres /var/run/postgresql
    chmod 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
}

# Like the official image: VAR_FILE names a file holding the value of VAR (Docker secrets), so the
# value never has to be in the container's environment. Setting both is an error.
file_env() {
    local var=$1 file_var="${1}_FILE"
    if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
        log "error: both $var and $file_var are set; set only one of them"
        exit 1
    fi
    if [ -n "${!file_var:-}" ]; then
        if [ ! -r "${!file_var}" ]; then
            log "error: $file_var=${!file_var} cannot be read by $(id -un)"
            exit 1
        fi
        export "$var"="$(<"${!file_var}")"
        unset "$file_var"
    fi
}

run_init_scripts() {
    local script
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sh)
                log "running $script"
                bash "$script"
                ;;
            *.sql)
                log "running $script"
                psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$script"
                ;;
            *) ;;
        esac
    done
}

initialise_cluster() {
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        log "error: the data directory $PGDATA is empty and neither POSTGRES_PASSWORD nor" \
            "POSTGRES_PASSWORD_FILE is set;" \
            "set it to create the cluster (network clients must authenticate with it)"
        exit 1
    fi
    log "initialising a new cluster in $PGDATA for user $POSTGRES_USER"
    # The password goes through a pipe, never through the command line or a file on disk.
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS holds several options on purpose
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" \
        --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null

    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    printf '\n# Any network client authenticates with a SCRAM password.\nhost all all all scram-sha-256\n' \
        >>"$PGDATA/pg_hba.conf"

    # Socket-only server while the database and init scripts are set up: nobody connects half-way.
    pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait --silent start
    if [ "$POSTGRES_DB" != postgres ]; then
        log "creating database $POSTGRES_DB"
        psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
            --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";' >/dev/null
    fi
    run_init_scripts
    pg_ctl --pgdata="$PGDATA" --mode=fast --wait --silent stop
    log "cluster initialised"
}

if [ "${1:-}" != "" ] && [ "${1:0:1}" = "-" ]; then
    set -- postgres "$@"
fi

if [ "${1:-}" = postgres ]; then
    if [ "$(id -u)" = 0 ]; then
        claim_directories_and_drop_root "$@"
    fi
    export POSTGRES_USER="${POSTGRES_USER:-postgres}"
    export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    if [ -s "$PGDATA/PG_VERSION" ]; then
        unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
        log "using the existing cluster in $PGDATA (PostgreSQL $(cat "$PGDATA/PG_VERSION"))"
    else
        file_env POSTGRES_PASSWORD
        initialise_cluster
        unset POSTGRES_PASSWORD
    fi
    log "starting PostgreSQL"
fi

exec "$@"
