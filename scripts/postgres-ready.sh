#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use answers: the one on
# 127.0.0.1:5432 (trust auth), started here if it is installed but stopped.
# A custom server can be named with PASSERELLE_TEST_POSTGRES_URL.
set -euo pipefail
url="${PASSERELLE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ready() { psql "$url" -qAtc 'select 1' >/dev/null 2>&1; }
if ! command -v psql >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-client >/dev/null
    else
        echo "postgres-ready: psql is missing (install postgresql-client)" >&2
        exit 1
    fi
fi
ready && exit 0
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in /etc/postgresql/*; do
        pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start >/dev/null 2>&1 || true
    done
fi
for _ in $(seq 1 30); do
    ready && exit 0
    sleep 1
done
echo "postgres-ready: no PostgreSQL answers at $url" >&2
exit 1
