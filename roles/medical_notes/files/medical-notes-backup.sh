#!/usr/bin/env bash
# Logical backups of the medical-notes database (pg_dump custom format), run inside a container
# from the stack's PostgreSQL image on the stack's network.
#
#   medical-notes-backup.sh once [LABEL]   one backup now; prints BACKUP_FILE=<name> on success
#   medical-notes-backup.sh schedule       backups on BACKUP_SCHEDULE for ever (the backup container)
#
# Environment: PGHOST, PGUSER, PGDATABASE, PGPASSFILE (libpq), BACKUP_DIR (/backups),
# STATE_DIR (/state), BACKUP_KEEP (14), BACKUP_COMPRESS (6),
# BACKUP_SCHEDULE (daily | hourly | HH:MM | <seconds>).
# Every attempt rewrites $STATE_DIR/backup-status.json (atomically): the time and file of the last
# good backup, the time of the last attempt and the last error (one line, null after a success).
set -Eeuo pipefail
umask 077

: "${PGHOST:?PGHOST is not set}" "${PGUSER:?PGUSER is not set}" "${PGDATABASE:?PGDATABASE is not set}"
BACKUP_DIR=${BACKUP_DIR:-/backups}
STATE_DIR=${STATE_DIR:-/state}
BACKUP_KEEP=${BACKUP_KEEP:-14}
BACKUP_SCHEDULE=${BACKUP_SCHEDULE:-daily}
STATUS_FILE="$STATE_DIR/backup-status.json"
DAILY_AT=02:00

log() {
    printf '%s medical-notes-backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

# A JSON string literal on one line (or null for an empty value).
json_value() {
    local value=$1
    if [ -z "$value" ]; then
        printf 'null'
        return
    fi
    value=${value//\\/\\\\}
    value=${value//\"/\\\"}
    printf '"%s"' "$(printf '%s' "$value" | tr -d '\000-\037')"
}

# A field this script wrote into the status file ("" when absent or null).
status_field() {
    [ -f "$STATUS_FILE" ] || return 0
    sed -n "s/^  \"$1\": \"\\([^\"]*\\)\",\\{0,1\\}\$/\\1/p" "$STATUS_FILE"
}

write_status() {
    local success_at=$1 success_file=$2 attempt_at=$3 error=$4 temporary
    temporary=$(mktemp "$STATE_DIR/.backup-status.XXXXXX")
    {
        printf '{\n'
        printf '  "last_success_at": %s,\n' "$(json_value "$success_at")"
        printf '  "last_success_file": %s,\n' "$(json_value "$success_file")"
        printf '  "last_attempt_at": %s,\n' "$(json_value "$attempt_at")"
        printf '  "last_error": %s\n' "$(json_value "$error")"
        printf '}\n'
    } >"$temporary"
    # Read by the API (another user): no secrets and no patient data in it.
    chmod 0644 "$temporary"
    mv -f "$temporary" "$STATUS_FILE"
}

remove_old_backups() {
    local old
    local -a backups
    # Only files this script named are counted and removed; anything else in the directory stays.
    mapfile -t backups < <(find "$BACKUP_DIR" -maxdepth 1 -type f \
        -name "$PGDATABASE-[0-9]*T[0-9]*Z*.dump" -printf '%f\n' | sort -r)
    for old in "${backups[@]:$BACKUP_KEEP}"; do
        rm -f -- "${BACKUP_DIR:?}/$old" "$BACKUP_DIR/$old.sha256"
        log "removed old backup $old (keeping the newest $BACKUP_KEEP)"
    done
}

backup_once() {
    local label=${1:-} attempt_at stamp name partial errors error digest status=0
    exec 9>"$BACKUP_DIR/.lock"
    flock 9
    # Left over by an interrupted run: we hold the lock, so none of them is being written.
    find "$BACKUP_DIR" -maxdepth 1 -name '.*.partial' -type f -delete

    while :; do
        attempt_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
        stamp=$(date -u -d "$attempt_at" +%Y%m%dT%H%M%SZ)
        name="$PGDATABASE-$stamp${label:+-$label}.dump"
        [ -e "$BACKUP_DIR/$name" ] || break
        sleep 1
    done
    partial="$BACKUP_DIR/.$name.partial"
    errors=$(mktemp)

    log "backing up database $PGDATABASE on $PGHOST into $name"
    # pg_dump reads everything in one repeatable-read snapshot: the file is consistent while the API
    # keeps writing.
    pg_dump --format=custom --compress="${BACKUP_COMPRESS:-6}" --no-password --file="$partial" 2>"$errors" || status=$?
    if [ "$status" -eq 0 ]; then
        digest=$(sha256sum -- "$partial" | cut -d' ' -f1) || status=$?
    fi
    if [ "$status" -eq 0 ]; then
        printf '%s  %s\n' "$digest" "$name" >"$BACKUP_DIR/.$name.sha256.partial" \
            && sync -- "$partial" "$BACKUP_DIR/.$name.sha256.partial" \
            && mv -f -- "$BACKUP_DIR/.$name.sha256.partial" "$BACKUP_DIR/$name.sha256" \
            && mv -f -- "$partial" "$BACKUP_DIR/$name" \
            && sync -- "$BACKUP_DIR" || status=$?
    fi

    if [ "$status" -ne 0 ]; then
        error=$(grep -v '^[[:space:]]*$' "$errors" | tail -n 1 || true)
        error=${error:-"pg_dump or writing the file failed with exit status $status"}
        rm -f -- "$partial" "$BACKUP_DIR/.$name.sha256.partial" "$errors"
        write_status "$(status_field last_success_at)" "$(status_field last_success_file)" "$attempt_at" \
            "$error"
        log "backup FAILED: $error"
        exec 9>&-
        return 1
    fi
    rm -f -- "$errors"
    write_status "$attempt_at" "$name" "$attempt_at" ""
    log "backup written: $name ($(stat -c %s "$BACKUP_DIR/$name") bytes)"
    remove_old_backups
    exec 9>&-
    printf 'BACKUP_FILE=%s\n' "$name"
}

# Seconds between two backups of the schedule (to decide whether one is overdue at start).
schedule_period() {
    case "$BACKUP_SCHEDULE" in
        hourly) echo 3600 ;;
        daily | [0-2][0-9]:[0-5][0-9]) echo 86400 ;;
        *) echo "$BACKUP_SCHEDULE" ;;
    esac
}

seconds_until_next() {
    local now target at
    now=$(date -u +%s)
    case "$BACKUP_SCHEDULE" in
        hourly) echo $((3600 - now % 3600)) ;;
        daily | [0-2][0-9]:[0-5][0-9])
            at=$BACKUP_SCHEDULE
            [ "$at" = daily ] && at=$DAILY_AT
            target=$(date -u -d "today $at" +%s)
            [ "$target" -gt "$now" ] || target=$((target + 86400))
            echo $((target - now))
            ;;
        *) echo "$BACKUP_SCHEDULE" ;;
    esac
}

check_schedule() {
    case "$BACKUP_SCHEDULE" in
        hourly | daily) ;;
        [01][0-9]:[0-5][0-9] | 2[0-3]:[0-5][0-9]) ;;
        *[!0-9]* | '' | 0) log "invalid BACKUP_SCHEDULE '$BACKUP_SCHEDULE' (daily, hourly, HH:MM or seconds)"; exit 2 ;;
        *) ;;
    esac
}

run_schedule() {
    local sleeper='' last_success last_epoch now
    check_schedule
    trap 'log "stopping"; [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; exit 0' TERM INT
    log "scheduled backups: $BACKUP_SCHEDULE (times in UTC), keeping the newest $BACKUP_KEEP"
    # A backup missed while the container or the host was down is taken at start.
    last_success=$(status_field last_success_at)
    last_epoch=0
    if [ -n "$last_success" ]; then
        last_epoch=$(date -u -d "$last_success" +%s 2>/dev/null || echo 0)
    fi
    now=$(date -u +%s)
    if [ $((now - last_epoch)) -ge "$(schedule_period)" ]; then
        backup_once "" >/dev/null || true
    fi
    while :; do
        sleep "$(seconds_until_next)" &
        sleeper=$!
        wait "$sleeper" || true
        sleeper=''
        backup_once "" >/dev/null || true
    done
}

case "${1:-}" in
    once) backup_once "${2:-}" ;;
    schedule) run_schedule ;;
    *)
        echo "usage: $0 once [LABEL] | schedule" >&2
        exit 2
        ;;
esac
