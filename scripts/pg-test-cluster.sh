#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite, on a loopback port.
#
#   scripts/pg-test-cluster.sh start   # installs Debian's postgresql when missing,
#                                      # initdb + start; prints `export SNAPPACK_TEST_POSTGRES_URL=...`
#   scripts/pg-test-cluster.sh stop    # stops the cluster and deletes its directory
#   scripts/pg-test-cluster.sh url     # prints the URL of the running cluster
#
# Usage in a shell: eval "$(scripts/pg-test-cluster.sh start)"; cargo test; scripts/pg-test-cluster.sh stop
# The cluster lives in target/pg-test-cluster, on the first free port from 55432 (or PG_TEST_PORT).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/target/pg-test-cluster"

log() { echo "pg-test-cluster: $*" >&2; }

bindir() {
    local initdb
    initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$initdb" ]; then
        log "installing Debian's postgresql"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)"
    fi
    dirname "$initdb"
}

# Runs a command as the cluster's owner: `postgres` when we are root (the server refuses root).
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() { echo "postgres://snappack@127.0.0.1:$(cat "$dir/port")/postgres"; }

start() {
    local bin
    bin="$(bindir)"
    if [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        log "already running"
        echo "export SNAPPACK_TEST_POSTGRES_URL=$(url)"
        return
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    local port="${PG_TEST_PORT:-}"
    if [ -z "$port" ]; then
        port=55432
        while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    fi
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U snappack -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Small and fast: a test cluster needs no durability across machine crashes.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    log "started on 127.0.0.1:$port"
    echo "export SNAPPACK_TEST_POSTGRES_URL=$(url)"
}

stop() {
    if [ -d "$dir/data" ]; then
        as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$dir"
        log "stopped"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
