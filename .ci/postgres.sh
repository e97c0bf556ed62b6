#!/usr/bin/env bash
# A throwaway PostgreSQL server for the multi-worker tests (tests/test_workers.py).
#
#   .ci/postgres.sh start DIR   initdb in DIR, start on 127.0.0.1 at a free port, create the
#                               database "actsearch", print its URL on stdout (also DIR/url)
#   .ci/postgres.sh stop DIR    stop the server started in DIR (fast: sessions are ended)
#   .ci/postgres.sh up DIR      start the stopped server of DIR again, as it was
#
# PG_LISTEN=ADDR listens there instead of 127.0.0.1 and PG_ALLOW=CIDR lets clients from that
# network in (the fault harness, bench/faultlab.py, runs the server in a network namespace).
# The Unix socket is DIR itself, whatever the address.
#
# Installs Debian's postgresql package when no server binaries are found (needs root). When run
# as root the server runs as the "postgres" user, since PostgreSQL refuses to run as root.
# Everything but the URL goes to stderr, so `url=$(.ci/postgres.sh start DIR)` works.
set -euo pipefail

action=${1:?usage: postgres.sh start|stop|up DIR}
dir=${2:?usage: postgres.sh start|stop|up DIR}

bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ]; then echo "$d"; return; fi
    done
    return 1
}

as_owner() {
    # PostgreSQL will not run as root; drop to the postgres user when we are root.
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case $action in
start)
    if ! BIN=$(bindir); then
        if [ "$(id -u)" != 0 ]; then
            echo "postgres.sh: no PostgreSQL binaries and not root: cannot install" >&2
            exit 1
        fi
        echo "postgres.sh: installing postgresql (apt-get)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        BIN=$(bindir)
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    # A password on the URL, so the tests also check that no output shows it.
    password=actsearch-ci-secret
    pwfile="$dir/pwfile"
    echo "$password" > "$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$pwfile"; fi
    as_owner "$BIN/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    listen=${PG_LISTEN:-127.0.0.1}
    # A free port: ask the kernel for one (a small race with other starters is acceptable).
    port=$(python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$listen")
    # In the config file, not on pg_ctl's command line, so that `up` starts it the same way.
    cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$dir'
max_connections = 100
fsync = off
CONF
    if [ -n "${PG_ALLOW:-}" ]; then
        echo "host all all $PG_ALLOW scram-sha-256" >> "$dir/data/pg_hba.conf"
    fi
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >&2
    as_owner "$BIN/createdb" -h "$dir" -p "$port" -U postgres actsearch
    url="postgresql://postgres:$password@$listen:$port/actsearch"
    echo "$url" > "$dir/url"
    echo "$url"
    ;;
stop)
    BIN=$(bindir)
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    ;;
up)
    BIN=$(bindir)
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >&2
    ;;
*)
    echo "usage: postgres.sh start|stop|up DIR" >&2
    exit 2
    ;;
esac
