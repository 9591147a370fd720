#!/usr/bin/env bash
# Schemathesis (PyPI, pinned, in a venv under target/schemathesis/) against a
# running Passerelle, from its own /openapi.json: every operation of the
# storefront and admin APIs gets its documented examples, the edges of its
# schemas and random input, and must never answer 5xx and always answer what
# the document says (status, media type and body schema). Once on SQLite,
# once on PostgreSQL (a database of its own on PASSERELLE_TEST_POSTGRES_URL's
# server, dropped afterwards). Each run is bounded by SCHEMATHESIS_MAX_TIME
# seconds (default 30) per half (see below) and SCHEMATHESIS_MAX_EXAMPLES per operation (30).
#
# Needs python3, the host built (`cargo build -p passerelle`, done here) and,
# for PostgreSQL, scripts/postgres-ready.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
OUT=target/schemathesis
VENV=$OUT/venv
TOOL=$VENV/bin/schemathesis
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-30}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-30}

if [ "$("$TOOL" --version 2>/dev/null | awk '{print $3}')" != "$SCHEMATHESIS_VERSION" ]; then
    echo "schemathesis.sh: installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
    rm -rf "$VENV"
    if python3 -m venv "$VENV" 2>/dev/null; then
        PIP=("$VENV/bin/python" -m pip)
    else
        rm -rf "$VENV"
        python3 -m venv --without-pip "$VENV"
        PIP=(python3 -m pip --python "$VENV/bin/python")
    fi
    "${PIP[@]}" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# scripts/test passes its features (PASSERELLE_TEST_FEATURES), so that this
# build reuses the one its tests made instead of compiling the host again.
cargo build --quiet -p passerelle ${PASSERELLE_TEST_FEATURES:+--features "$PASSERELLE_TEST_FEATURES"}
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
BIN=$target_dir/debug/passerelle

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

server_pid=""
pg_db=""
PG_URL="${PASSERELLE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    if [ -n "$pg_db" ]; then
        psql "$PG_URL" -qAtc "drop database if exists $pg_db with (force)" >/dev/null 2>&1 || true
        pg_db=""
    fi
}
trap cleanup EXIT

# run NAME [serve flags...]: a demo server (merchant, keys, the bundled
# connectors on the PSP sandbox), then Schemathesis against it.
run() {
    local name=$1
    shift
    local dir=$OUT/run-$name
    rm -rf "$dir"
    mkdir -p "$dir"
    local port sandbox_port
    port=$(free_port)
    sandbox_port=$(free_port)
    # (The compiled connectors are kept across runs.)
    PASSERELLE_LOG=warn "$BIN" serve --demo --data-dir "$dir/data" \
        --compile-cache "$OUT/compiled-plugins" \
        --listen "127.0.0.1:$port" --sandbox-listen "127.0.0.1:$sandbox_port" "$@" \
        >"$dir/server.log" 2>&1 &
    server_pid=$!
    local base="http://127.0.0.1:$port"
    for _ in $(seq 1 120); do
        if [ -f "$dir/data/demo.json" ] && curl -fsS "$base/health" >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$dir/server.log" >&2
            echo "schemathesis.sh: the server ($name) stopped" >&2
            return 1
        fi
        sleep 0.5
    done
    curl -fsS "$base/health" >/dev/null
    local keys
    keys=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["secret_key"], d["admin_key"])' "$dir/data/demo.json")
    # Keys reach Schemathesis through the environment, never a command line.
    export PASSERELLE_ST_SECRET_KEY=${keys% *} PASSERELLE_ST_ADMIN_KEY=${keys#* }
    cat >"$dir/schemathesis.toml" <<'TOML'
[auth.openapi.secret_key]
bearer = "${PASSERELLE_ST_SECRET_KEY}"

[auth.openapi.admin_key]
bearer = "${PASSERELLE_ST_ADMIN_KEY}"
TOML
    echo "schemathesis.sh: $name: $base/openapi.json (at most 2 x ${MAX_TIME}s)" >&2
    local status=0
    # Operations that change what every other one works with (the demo's
    # plugins, its API keys) go last, on their own: Schemathesis reuses ids
    # it sees in answers, and a disabled plugin or a revoked key would turn
    # the rest of the run into 503s and 401s that test nothing.
    local destructive='^/v1/admin/(plugins|api_keys)'
    for part in "--exclude-path-regex=$destructive" "--include-path-regex=$destructive"; do
        # From the run's folder: Schemathesis keeps its replay cache in
        # ./.schemathesis, which belongs under target/, not in the checkout.
        (cd "$dir" && "$ROOT/$TOOL" --config-file schemathesis.toml run "$base/openapi.json" "$part" \
            --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
            --phases examples,coverage,fuzzing \
            --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" \
            --workers 1 --seed 42 --no-color \
            --generation-database "$ROOT/$OUT/examples" \
            --report junit --report-dir report) || status=$?
    done
    cleanup
    if [ "$status" -ne 0 ]; then
        echo "schemathesis.sh: $name: failures above (server log: $dir/server.log)" >&2
        return "$status"
    fi
}

run sqlite
pg_db="passerelle_schemathesis_$$"
psql "$PG_URL" -qAtc "create database $pg_db" >/dev/null
run postgres --database-url "$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$PG_URL" "$pg_db")"
