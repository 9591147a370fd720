#!/usr/bin/env bash
# Open-loop load benchmark of `passerelle serve` (release build): for each
# database (SQLite, PostgreSQL) and each operation (payment creation,
# capture, refund), requests are sent at a fixed offered rate, stepped up,
# and each latency runs from the request's *intended* send time, so that
# queueing shows. Per step: achieved rate, p50/p99, errors, the server's
# CPU time per request and its peak RSS, and the PSP simulator's CPU per
# request apart (it runs as a process of its own). Then the server's
# startup time with every connector in the compile cache.
#
# Creation is driven by oha (-q RATE --latency-correction); a capture or a
# refund needs a payment of its own per request, which oha cannot send (its
# --urls-from-file draws URLs at random, with repeats), so those go through
# scripts/load-gen, an open-loop generator on the same principle.
#
# Prints a Markdown table per database and operation; the raw numbers go to
# target/bench-load/*.json. See docs/performance.md, "Load benchmark".
#
# Settings (environment):
#   BENCH_RATES       offered rates, req/s      (default "250 500 1000 1500 2000 3000")
#   BENCH_DURATION    seconds per rate step     (default 4)
#   BENCH_DATABASES   "sqlite postgres"         (default both)
#   BENCH_OPERATIONS  "create capture refund"   (default all three)
#   BENCH_CONCURRENCY connections of the load generator (default 64)
#   BENCH_STARTUP_RUNS startups timed per case  (default 5; 0 skips them)
#   BENCH_PG_URL      server URL, no database   (default postgres://postgres@127.0.0.1:5432)
#   BENCH_BIN         a server binary to measure instead of building
#                     target/release/passerelle (for A/B runs of two builds)
#   BENCH_PYTHON_COMPONENT  the Python example's component (default
#                     target/examples/python-dummy/component.wasm)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

RATES="${BENCH_RATES:-250 500 1000 1500 2000 3000}"
DURATION="${BENCH_DURATION:-4}"
DATABASES="${BENCH_DATABASES:-sqlite postgres}"
OPERATIONS="${BENCH_OPERATIONS:-create capture refund}"
CONCURRENCY="${BENCH_CONCURRENCY:-64}"
STARTUP_RUNS="${BENCH_STARTUP_RUNS:-5}"
PG_URL="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}"
PYTHON_COMPONENT="${BENCH_PYTHON_COMPONENT:-$ROOT/target/examples/python-dummy/component.wasm}"
P99_TARGET_MS=10

TOOLS="$ROOT/target/tools"
OUT="$ROOT/target/bench-load"
OHA="$TOOLS/bin/oha"
LOAD_GEN="$TOOLS/load-gen/release/passerelle-load-gen"
BIN="${BENCH_BIN:-$ROOT/target/release/passerelle}"

say() { printf 'bench-load: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- clean-up: our processes (by pid) and databases, whatever happens ------
PIDS=()
PG_DATABASES=()
WORK="$(mktemp -d /tmp/passerelle-bench-load.XXXXXX)"
cleanup() {
    local pid db
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for db in "${PG_DATABASES[@]}"; do
        psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 \
            || say "could not drop database $db"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

stop_process() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

# --- tools ------------------------------------------------------------------
ensure_tools() {
    command -v curl >/dev/null || die "curl is needed"
    command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
    if [ ! -x "$OHA" ]; then
        if ! command -v cmake >/dev/null || ! command -v make >/dev/null; then
            [ "$(id -u)" = 0 ] || die "oha needs cmake and make to build: install them"
            say "installing cmake and make (oha needs them to build)"
            apt-get update -qq && apt-get install -y -qq cmake make >/dev/null
        fi
        say "installing oha into target/tools (a few minutes, once)"
        cargo install --locked oha --root "$TOOLS"
    fi
    say "building the load generator (scripts/load-gen)"
    cargo build --quiet --release --manifest-path scripts/load-gen/Cargo.toml \
        --target-dir "$TOOLS/load-gen"
    if [ -z "${BENCH_BIN:-}" ]; then
        say "building passerelle (release)"
        cargo build --quiet --release -p passerelle
    fi
    [ -x "$BIN" ] || die "no $BIN after the build"
}

# --- /proc ------------------------------------------------------------------
CLK_TCK="$(getconf CLK_TCK)"

# User + system CPU time of a process, in clock ticks.
cpu_ticks() {
    local stat rest
    stat="$(<"/proc/$1/stat")"
    rest="${stat##*) }"
    local -a f
    read -ra f <<<"$rest"
    # After the command name: state is field 3, utime 14, stime 15.
    echo $((f[11] + f[12]))
}

peak_rss_kib() {
    awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

now_ns() { date +%s%N; }

# --- the PSP simulator, a process of its own ----------------------------------
SANDBOX_PID=""
DUMMY_PSP_URL=""
start_sandbox() {
    "$BIN" sandbox --listen 127.0.0.1:0 --specs off >"$WORK/sandbox.out" 2>"$WORK/sandbox.log" &
    SANDBOX_PID=$!
    PIDS+=("$SANDBOX_PID")
    local deadline=$((SECONDS + 30))
    until DUMMY_PSP_URL="$(awk '$1 == "dummy" {print $2}' "$WORK/sandbox.out")" && [ -n "$DUMMY_PSP_URL" ]; do
        kill -0 "$SANDBOX_PID" 2>/dev/null || die "the PSP sandbox exited: $(cat "$WORK/sandbox.log")"
        [ "$SECONDS" -lt "$deadline" ] || die "the PSP sandbox did not start"
        sleep 0.05
    done
    say "PSP sandbox (pid $SANDBOX_PID): dummy PSP at $DUMMY_PSP_URL"
}

# --- the server -------------------------------------------------------------
SERVER_PID=""
BASE_URL=""
SECRET_KEY=""
ADMIN_KEY=""
ACCOUNT_ID=""

# start_server DATA_DIR [serve arguments...]: spawns `serve --demo`, waits
# for a healthy /health; sets SERVER_PID, BASE_URL, the keys, ACCOUNT_ID and
# STARTUP_MS.
start_server() {
    local data_dir="$1"
    shift
    mkdir -p "$data_dir"
    rm -f "$data_dir/demo.json"
    local started
    started="$(now_ns)"
    PASSERELLE_LOG=warn "$BIN" serve --demo --listen 127.0.0.1:0 --sandbox-listen 127.0.0.1:0 \
        --data-dir "$data_dir" --workers 2 --psp-specs off --compile-cache "$WORK/compile-cache" "$@" \
        >/dev/null 2>>"$data_dir/server.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local deadline=$((SECONDS + 180))
    until [ -s "$data_dir/demo.json" ] && jq -e .base_url "$data_dir/demo.json" >/dev/null 2>&1; do
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited: $(tail -20 "$data_dir/server.log")"
        [ "$SECONDS" -lt "$deadline" ] || die "the server did not start (log: $data_dir/server.log)"
        sleep 0.005
    done
    BASE_URL="$(jq -r .base_url "$data_dir/demo.json")"
    until curl -fs -o /dev/null "$BASE_URL/health"; do
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited: $(tail -20 "$data_dir/server.log")"
        [ "$SECONDS" -lt "$deadline" ] || die "the server is not healthy (log: $data_dir/server.log)"
    done
    STARTUP_MS=$((($(now_ns) - started) / 1000000))
    SECRET_KEY="$(jq -r .secret_key "$data_dir/demo.json")"
    ADMIN_KEY="$(jq -r .admin_key "$data_dir/demo.json")"
    ACCOUNT_ID="$(jq -r .connectors.dummy.account_id "$data_dir/demo.json")"
}

# The demo's dummy account goes to the sandbox process, not the server's own.
use_external_psp() {
    curl -fsS -o /dev/null -X PATCH "$BASE_URL/v1/admin/connector_accounts/$ACCOUNT_ID" \
        -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
        -d "{\"base_url\": \"$DUMMY_PSP_URL\", \"credentials\": {\"api_key\": \"sk_dummy_test\", \"webhook_secret\": \"whsec_dummy_test\"}}" \
        || die "could not point the dummy account at the PSP sandbox"
}

payment_body() {
    printf '{"amount": 1050, "currency": "EUR", "reference": "bench-load", "capture_method": "%s", "payment_method": {"type": "card", "card": {"number": "4111111111111111", "exp_month": 3, "exp_year": 2030, "cvc": "737", "holder_name": "Ada Lovelace"}}, "return_url": "https://shop.example/checkout/done?cart=42"}' "$1"
}

# --- one step: an offered rate for DURATION seconds --------------------------
# Normalized result (both tools): offered_rps, sent, ok, errors, statuses,
# elapsed_s, achieved_rps, latency_ms {p50,p95,p99,max,mean}.
run_oha_create() {
    local rate="$1" raw="$2"
    "$OHA" -z "${DURATION}s" -q "$rate" --latency-correction -w -c "$CONCURRENCY" \
        --no-tui --output-format json -m POST \
        -H "Authorization: Bearer $SECRET_KEY" -H 'Content-Type: application/json' \
        -d "$(payment_body automatic)" "$BASE_URL/v1/payments" >"$raw"
    jq --argjson rate "$rate" --argjson duration "$DURATION" '
        (.statusCodeDistribution // {}) as $codes
        | (.errorDistribution // {}) as $errs
        | ([$codes | to_entries[] | select(.key | startswith("2")) | .value] | add // 0) as $ok
        | (([$codes[]] | add // 0) + ([$errs[]] | add // 0)) as $sent
        | {tool: "oha", offered_rps: $rate, duration_s: $duration, sent: $sent, ok: $ok,
           errors: ($sent - $ok), statuses: ($codes + $errs), elapsed_s: .summary.total,
           achieved_rps: ($ok / .summary.total),
           latency_ms: (.metrics.latency_ms | {p50, p95, p99, max, mean})}' "$raw"
}

run_load_gen() {
    local rate="$1" urls="$2" skip="$3" body="$4"
    "$LOAD_GEN" run --urls "$urls" --skip "$skip" --key "$SECRET_KEY" --body "$body" \
        --rate "$rate" --duration "$DURATION" --concurrency "$CONCURRENCY"
}

# measure_step DB OP RATE COMMAND...: runs the command (which prints the
# normalized JSON) between two readings of both processes' CPU time.
measure_step() {
    local db="$1" op="$2" rate="$3"
    shift 3
    local s0 p0 s1 p1 result
    s0="$(cpu_ticks "$SERVER_PID")"
    p0="$(cpu_ticks "$SANDBOX_PID")"
    result="$("$@")"
    s1="$(cpu_ticks "$SERVER_PID")"
    p1="$(cpu_ticks "$SANDBOX_PID")"
    jq --argjson ds "$((s1 - s0))" --argjson dp "$((p1 - p0))" --argjson tck "$CLK_TCK" \
        --argjson rss "$(peak_rss_kib "$SERVER_PID")" --arg db "$db" --arg op "$op" '
        (.sent - (.statuses.timeout // 0) - (.statuses.transport_error // 0)) as $answered
        | . + {database: $db, operation: $op, answered: $answered,
               server_cpu_us_per_req: (if $answered > 0 then $ds / $tck * 1e6 / $answered else null end),
               psp_cpu_us_per_req: (if $answered > 0 then $dp / $tck * 1e6 / $answered else null end),
               server_peak_rss_mib: ($rss / 1024)}' <<<"$result"
}

total_requests() {
    local n=0 r
    for r in $RATES; do
        n=$((n + r * DURATION))
    done
    echo "$n"
}

# bench_database DB: one server on DB, every operation, every rate.
bench_database() {
    local db="$1"
    local data_dir="$WORK/$db" results="$OUT/$db.json"
    local -a args=()
    if [ "$db" = postgres ]; then
        local name
        name="passerelle_bench_$$_$RANDOM"
        psql "$PG_URL/postgres" -qAt -c "CREATE DATABASE $name" >/dev/null \
            || die "cannot create database $name on $PG_URL (is PostgreSQL running, with trust auth?)"
        PG_DATABASES+=("$name")
        args=(--database-url "$PG_URL/$name")
    fi
    say "$db: starting the server"
    start_server "$data_dir" "${args[@]}"
    use_external_psp
    say "$db: server pid $SERVER_PID at $BASE_URL"
    : >"$results.tmp"

    # Warm-up: connections, the connector's instances, the database's caches.
    "$LOAD_GEN" create --base-url "$BASE_URL" --key "$SECRET_KEY" --count 500 \
        --capture-method automatic --concurrency 8 >/dev/null

    local rate op step
    for op in $OPERATIONS; do
        case "$op" in
            create)
                for rate in $RATES; do
                    say "$db: creation at $rate req/s for ${DURATION}s"
                    step="$(measure_step "$db" create "$rate" run_oha_create "$rate" "$WORK/oha-$db-$rate.json")"
                    echo "$step" >>"$results.tmp"
                done
                ;;
            capture | refund)
                if [ ! -s "$WORK/$db-ids.txt" ]; then
                    local n
                    n="$(total_requests)"
                    say "$db: creating $n payments to capture, then refund (untimed)"
                    "$LOAD_GEN" create --base-url "$BASE_URL" --key "$SECRET_KEY" --count "$n" \
                        --capture-method manual --concurrency 16 >"$WORK/$db-ids.txt"
                    sed "s|.*|$BASE_URL/v1/payments/&/capture|" "$WORK/$db-ids.txt" >"$WORK/$db-capture.urls"
                    sed "s|.*|$BASE_URL/v1/payments/&/refunds|" "$WORK/$db-ids.txt" >"$WORK/$db-refund.urls"
                fi
                [ "$op" = capture ] || [ -n "$(jq -c 'select(.operation == "capture")' "$results.tmp")" ] \
                    || say "$db: refunds without captures first: each refund will fail (not captured)"
                local skip=0
                for rate in $RATES; do
                    say "$db: $op at $rate req/s for ${DURATION}s"
                    step="$(measure_step "$db" "$op" "$rate" run_load_gen "$rate" "$WORK/$db-$op.urls" "$skip" '{}')"
                    echo "$step" >>"$results.tmp"
                    skip=$((skip + rate * DURATION))
                done
                ;;
            *) die "unknown operation $op (create, capture, refund)" ;;
        esac
    done
    jq -s . "$results.tmp" >"$results"
    rm -f "$results.tmp"
    stop_process "$SERVER_PID"
    say "$db: results in ${results#"$ROOT"/}"
}

# --- startup ----------------------------------------------------------------
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# time_startups LABEL DATA_DIR_PREFIX FRESH [serve arguments...]: median of
# STARTUP_RUNS startups; FRESH=1 gives each its own new data directory.
time_startups() {
    local label="$1" dir="$2" fresh="$3" i
    shift 3
    local times=()
    for ((i = 0; i < STARTUP_RUNS; i++)); do
        local data_dir="$dir"
        [ "$fresh" = 1 ] && data_dir="$dir-$i"
        start_server "$data_dir" "$@"
        times+=("$STARTUP_MS")
        stop_process "$SERVER_PID"
    done
    local med
    med="$(printf '%s\n' "${times[@]}" | median)"
    jq -n --arg case "$label" --argjson median "$med" \
        --argjson runs "$(printf '%s\n' "${times[@]}" | jq -s .)" \
        '{case: $case, median_ms: $median, runs_ms: $runs}'
}

bench_startup() {
    [ "$STARTUP_RUNS" -gt 0 ] || return 0
    local results="$OUT/startup.json"
    : >"$results.tmp"
    say "startup: filling the compile cache"
    start_server "$WORK/startup-warm"
    stop_process "$SERVER_PID"
    say "startup: $STARTUP_RUNS runs, fresh data directory each"
    time_startups "serve --demo, fresh data dir (SQLite), bundled connectors from the cache" \
        "$WORK/startup-fresh" 1 >>"$results.tmp"
    say "startup: $STARTUP_RUNS restarts on one data directory"
    time_startups "serve --demo, restart on the same data dir (SQLite), bundled connectors from the cache" \
        "$WORK/startup-warm" 0 >>"$results.tmp"
    if [ -f "$PYTHON_COMPONENT" ]; then
        say "startup: installing the Python example connector"
        local py_dir="$WORK/startup-python"
        start_server "$py_dir" --allow-unsigned-plugins
        "$BIN" plugin pack --manifest examples/python-dummy/manifest.toml \
            --component "$PYTHON_COMPONENT" --out "$WORK/python-dummy.ppkg" >/dev/null \
            || die "plugin pack of the Python example failed"
        PASSERELLE_URL="$BASE_URL" PASSERELLE_ADMIN_KEY="$ADMIN_KEY" \
            "$BIN" admin plugins install "$WORK/python-dummy.ppkg" --activate >/dev/null \
            || die "installing the Python example failed"
        stop_process "$SERVER_PID"
        say "startup: $STARTUP_RUNS restarts with the Python example installed"
        time_startups "serve --demo, restart on the same data dir (SQLite), bundled + Python example from the cache" \
            "$py_dir" 0 --allow-unsigned-plugins >>"$results.tmp"
    else
        say "startup: no ${PYTHON_COMPONENT#"$ROOT"/} (examples/python-dummy/build.sh builds it): the Python case is skipped"
    fi
    jq -s . "$results.tmp" >"$results"
    rm -f "$results.tmp"
}

# --- report -----------------------------------------------------------------
print_tables() {
    local db op file
    for db in $DATABASES; do
        file="$OUT/$db.json"
        [ -f "$file" ] || continue
        for op in $OPERATIONS; do
            printf '\n### %s, %s\n\n' "$db" "$op"
            echo '| offered req/s | sent | achieved req/s | p50 ms | p99 ms | max ms | errors | server CPU µs/req | PSP CPU µs/req | server peak RSS MiB |'
            echo '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
            jq -r --arg op "$op" '.[] | select(.operation == $op)
                | "| \(.offered_rps) | \(.sent) | \(.achieved_rps | round) | \(.latency_ms.p50 * 100 | round / 100) | \(.latency_ms.p99 * 100 | round / 100) | \(.latency_ms.max * 10 | round / 10) | \(.errors) | \(.server_cpu_us_per_req | round) | \(.psp_cpu_us_per_req | round) | \(.server_peak_rss_mib * 10 | round / 10) |"' "$file"
            jq -r --arg op "$op" --argjson target "$P99_TARGET_MS" '
                [.[] | select(.operation == $op and .errors == 0 and .latency_ms.p99 <= $target
                              and .achieved_rps >= 0.95 * .offered_rps)]
                | if length == 0 then "\nHighest rate with p99 ≤ \($target) ms: none of the rates tried."
                  else "\nHighest rate with p99 ≤ \($target) ms (no errors, ≥ 95 % of the offered rate achieved): \(max_by(.offered_rps) | .offered_rps) req/s offered, \(max_by(.offered_rps) | .achieved_rps | round) achieved."
                  end' "$file"
        done
    done
    if [ -f "$OUT/startup.json" ]; then
        printf '\n### Startup (spawn to a healthy GET /health, median of %s)\n\n' "$STARTUP_RUNS"
        echo '| case | median ms | runs ms |'
        echo '|---|---:|---|'
        jq -r '.[] | "| \(.case) | \(.median_ms) | \(.runs_ms | map(tostring) | join(", ")) |"' "$OUT/startup.json"
    fi
}

main() {
    mkdir -p "$OUT"
    ensure_tools
    say "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
    jq -n --arg rates "$RATES" --argjson duration "$DURATION" --argjson concurrency "$CONCURRENCY" \
        --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg oha "$("$OHA" --version)" \
        --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        '{rates: ($rates | split(" ") | map(select(. != "") | tonumber)), duration_s: $duration,
          concurrency: $concurrency, load_average_at_start: $load, oha: $oha, commit: $commit,
          date: (now | todate)}' >"$OUT/run.json"
    start_sandbox
    local db
    for db in $DATABASES; do
        case "$db" in
            sqlite | postgres) bench_database "$db" ;;
            *) die "unknown database $db (sqlite, postgres)" ;;
        esac
    done
    bench_startup
    say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    print_tables
}

main "$@"
