#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite.
#
#   scripts/pgtest.sh start            start one; prints  export CDP_PGTEST_DIR=...  and
#                                      export CDP_TEST_PG_URL=...  (so: eval "$(scripts/pgtest.sh start)")
#   scripts/pgtest.sh stop [DIR]       stop it and delete its folder (DIR defaults to $CDP_PGTEST_DIR)
#   scripts/pgtest.sh url  [DIR]       print its URL
#   scripts/pgtest.sh run -- CMD ...   start one, run CMD with CDP_TEST_PG_URL exported, always stop it;
#                                      exits with CMD's status
#
# The cluster lives in a fresh temp folder (mktemp -d, under $TMPDIR or /tmp), listens on
# 127.0.0.1 at a free port and on a unix socket inside that folder, trusts every local
# connection, and has one database, cdp_test, owned by the superuser "cdp":
#   postgresql://cdp@127.0.0.1:PORT/cdp_test
# PostgreSQL refuses to run as root: as root the server runs as the system user
# $CDP_PGTEST_USER (default cdp-pg, created with useradd if missing; falls back to nobody).
# Not root: it runs as the current user.
# initdb and pg_ctl are looked up on PATH, then in /usr/lib/postgresql/*/bin; as root on a
# Debian-like machine without them, the postgresql package is installed with apt-get.
set -euo pipefail

PG_SUPERUSER=cdp
PG_DATABASE=cdp_test
RUN_AS_DEFAULT=cdp-pg
MARKER=.cdp-pgtest

log() { printf 'pgtest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

find_bindir() {
    local ctl
    if ctl=$(command -v pg_ctl 2>/dev/null) && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$ctl")"
        return 0
    fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x $dir/pg_ctl && -x $dir/initdb ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

ensure_bindir() {
    local dir
    if dir=$(find_bindir); then
        echo "$dir"
        return 0
    fi
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "initdb/pg_ctl not found: installing PostgreSQL with apt-get"
        {
            DEBIAN_FRONTEND=noninteractive apt-get update -q
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
        } >&2 </dev/null || die "apt-get install postgresql failed"
        dir=$(find_bindir) && { echo "$dir"; return 0; }
    fi
    die "initdb and pg_ctl not found (PATH, /usr/lib/postgresql/*/bin); install PostgreSQL >= 13"
}

# The system user the server runs as (root only).
server_user() {
    local user=${CDP_PGTEST_USER:-$RUN_AS_DEFAULT}
    if id -u "$user" >/dev/null 2>&1; then
        echo "$user"
        return 0
    fi
    if command -v useradd >/dev/null 2>&1 \
        && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            --user-group "$user" >/dev/null 2>&1; then
        log "created system user $user"
        echo "$user"
        return 0
    fi
    id -u "$user" >/dev/null 2>&1 && { echo "$user"; return 0; }  # lost a race with another start
    log "cannot create user $user; running the server as nobody"
    echo nobody
}

# as_server CMD...: run CMD as the server user (root) or as ourselves.
as_server() {
    if [[ -z ${RUN_AS:-} ]]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$RUN_AS" -- "$@"
    elif command -v setpriv >/dev/null 2>&1; then
        setpriv --reuid="$RUN_AS" --regid="$(id -g "$RUN_AS")" --init-groups -- "$@"
    else
        su -s /bin/sh "$RUN_AS" -c "$(printf '%q ' "$@")"
    fi
}

free_port() {
    local py
    for py in python3 python; do
        if command -v "$py" >/dev/null 2>&1; then
            "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
            return 0
        fi
    done
    echo $((20000 + RANDOM % 20000))
}

cmd_start() {
    local bindir dir port url attempt
    bindir=$(ensure_bindir)
    RUN_AS=
    if [[ $(id -u) -eq 0 ]]; then
        RUN_AS=$(server_user)
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cdp-pgtest.XXXXXX")
    touch "$dir/$MARKER"
    mkdir -p "$dir/data" "$dir/sock"
    if [[ -n $RUN_AS ]]; then
        chown -R "$RUN_AS:" "$dir"
        chmod 755 "$dir"
    fi
    # Don't inherit a cwd the server user can't enter (e.g. /root).
    cd "$dir"
    as_server "$bindir/initdb" -D "$dir/data" -U "$PG_SUPERUSER" --auth=trust \
        -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; die "initdb failed (see above)"; }
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$dir/data/postgresql.auto.conf" <<EOF
# written by scripts/pgtest.sh: a throwaway test server, speed over durability
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
        [[ -n $RUN_AS ]] && chown "$RUN_AS:" "$dir/data/postgresql.auto.conf"
        if as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
            break
        fi
        if [[ $attempt -eq 5 ]]; then
            cat "$dir/server.log" >&2 2>/dev/null || true
            rm -rf "$dir"
            die "the server did not start (see its log above)"
        fi
        log "start on port $port failed; trying another port"
    done
    "$bindir/psql" -X -q -h "$dir/sock" -p "$port" -U "$PG_SUPERUSER" -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $PG_DATABASE TEMPLATE template0 ENCODING 'UTF8'" >&2 </dev/null \
        || { cmd_stop "$dir"; die "cannot create database $PG_DATABASE"; }
    url="postgresql://$PG_SUPERUSER@127.0.0.1:$port/$PG_DATABASE"
    echo "$url" >"$dir/url"
    echo "$bindir" >"$dir/bindir"
    echo "${RUN_AS}" >"$dir/runas"
    log "PostgreSQL $("$bindir/pg_ctl" --version | awk '{print $3}') up at $url (folder $dir, user ${RUN_AS:-$(id -un)})"
    printf 'export CDP_PGTEST_DIR=%q\nexport CDP_TEST_PG_URL=%q\n' "$dir" "$url"
}

cmd_stop() {
    local dir=${1:-${CDP_PGTEST_DIR:-}}
    [[ -n $dir ]] || die "stop: which server? pass its folder or set CDP_PGTEST_DIR"
    [[ -d $dir ]] || { log "stop: $dir is gone already"; return 0; }
    [[ -f $dir/$MARKER ]] || die "stop: $dir is not a pgtest folder; not touching it"
    local bindir
    bindir=$(cat "$dir/bindir" 2>/dev/null || find_bindir || true)
    RUN_AS=$(cat "$dir/runas" 2>/dev/null || true)
    [[ $(id -u) -eq 0 ]] || RUN_AS=
    if [[ -n $bindir && -f $dir/data/postmaster.pid ]]; then
        (cd "$dir" && as_server "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1) \
            || (cd "$dir" && as_server "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1) \
            || log "stop: pg_ctl stop failed"
    fi
    rm -rf "$dir"
    log "stopped and removed $dir"
}

cmd_url() {
    local dir=${1:-${CDP_PGTEST_DIR:-}}
    [[ -n $dir && -f $dir/url ]] || die "url: no server folder (pass it or set CDP_PGTEST_DIR)"
    cat "$dir/url"
}

cmd_run() {
    [[ ${1:-} == -- ]] && shift
    [[ $# -gt 0 ]] || die "run: no command given"
    local out
    out=$(cmd_start) || exit 1
    export CDP_PGTEST_DIR CDP_TEST_PG_URL
    CDP_PGTEST_DIR=$(sed -n 's/^export CDP_PGTEST_DIR=//p' <<<"$out")
    CDP_TEST_PG_URL=$(sed -n 's/^export CDP_TEST_PG_URL=//p' <<<"$out")
    trap 'cmd_stop "$CDP_PGTEST_DIR"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local status=0
    "$@" || status=$?
    return "$status"
}

case ${1:-} in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    url) shift; cmd_url "$@" ;;
    run) shift; cmd_run "$@" ;;
    *) echo "usage: $0 start | stop [DIR] | url [DIR] | run -- CMD ..." >&2; exit 2 ;;
esac
