#!/usr/bin/env bash
# Gateway benchmark: the same small MCP `tools/call`, in one run, sent three ways:
#   direct    straight to the demo MCP server (`warden demo-upstream`)
#   proxy     through a bare pooled reverse proxy with no checks (`warden-bench proxy`):
#             what any proxy on this machine can reach
#   gateway   through Warden's gateway (`warden serve`, /mcp/bench): token validated
#             (cached after the first request), JSON-RPC parsed and authorized, session
#             re-bound, a gateway assertion instead of the client's token, audit event
# first in a closed loop (capacity at CONCURRENCY), then open-loop at a light fixed rate
# (RATE req/s) for the latency a hop adds; then the cost of a cold and of a cached token
# validation, in-process (`cargo bench -p warden-server --bench validate`).
#
# Usage:   bash bench/gateway.sh
# Knobs (environment):
#   DURATION=10s      measurement window per cell
#   WARMUP=3s         warm-up before each window (same load, not recorded)
#   CONCURRENCY=32    keep-alive connections, one request in flight each (closed loop)
#   RATE=2000         requests per second of the fixed-rate cells (open loop)
#   ROUNDS=1          repeat the closed-loop cells, interleaved; the report keeps each
#                     cell's median-throughput round (steadier on a shared machine)
#   BENCH_THREADS=1   load-generator threads
#   VALIDATE_TOKENS=2000   tokens timed by the validation benchmark
#   WARDEN_PORT=18240 UPSTREAM_PORT=18241 PROXY_PORT=18242   loopback ports
#   STRICT=1          exit 1 if a target from issue 5 is missed (default: report only)
#   CARGO_TARGET_DIR  where cargo builds (default: ./target)
# Output: a table on stdout and bench/out/gateway-<UTC date>.json. See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONCURRENCY=${CONCURRENCY:-32}
RATE=${RATE:-2000}
ROUNDS=${ROUNDS:-1}
BENCH_THREADS=${BENCH_THREADS:-1}
VALIDATE_TOKENS=${VALIDATE_TOKENS:-2000}
WARDEN_PORT=${WARDEN_PORT:-18240}
UPSTREAM_PORT=${UPSTREAM_PORT:-18241}
PROXY_PORT=${PROXY_PORT:-18242}
STRICT=${STRICT:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_start gateway

command -v node >/dev/null || die "Node.js is required (it writes the report)"
command -v curl >/dev/null || die "curl is required"
for port in "$WARDEN_PORT" "$UPSTREAM_PORT" "$PROXY_PORT"; do
  port_free "$port" || die "port $port is in use (set WARDEN_PORT, UPSTREAM_PORT, PROXY_PORT)"
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# 1. Build (release), the validation benchmark included.
say "cargo build --release -p warden -p warden-bench; cargo bench --no-run -p warden-server --bench validate"
(cd "$ROOT" && cargo build --release --quiet -p warden -p warden-bench)
(cd "$ROOT" && cargo bench --quiet --no-run -p warden-server --bench validate)
WARDEN=$TARGET_DIR/release/warden
BENCH=$TARGET_DIR/release/warden-bench

# 2. The demo MCP server, and Warden in front of it: server `bench` with a tool group
#    covering the called tool, a machine client, and a policy granting it that group.
"$WARDEN" demo-upstream --listen "127.0.0.1:$UPSTREAM_PORT" >"$WORK/upstream.log" 2>&1 &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")
UPSTREAM=http://127.0.0.1:$UPSTREAM_PORT/mcp

say "warden init + server add + client add + apply (data dir $WORK/warden)"
export WARDEN_DATA_DIR=$WORK/warden
WURL=http://127.0.0.1:$WARDEN_PORT
"$WARDEN" init --public-url "$WURL" --json >"$WORK/init.json"
"$WARDEN" server add bench --upstream "$UPSTREAM" \
  --scope notes:read=notes_list,notes_read,whoami --json >"$WORK/server.json"
"$WARDEN" client add bench-agent --confidential --grant client_credentials \
  --scope notes:read --json >"$WORK/client.json"
RESOURCE=$(json "$WORK/server.json" 'j.canonical_uri')
CLIENT_ID=$(json "$WORK/client.json" 'j.client_id')
CLIENT_SECRET=$(json "$WORK/client.json" 'j.client_secret')
cat >"$WORK/policy.toml" <<EOF
version = 1
default = "allow"

[[client]]
id = "$CLIENT_ID"
servers = { bench = ["notes:read"] }
EOF
"$WARDEN" apply -f "$WORK/policy.toml" >"$WORK/apply.log" 2>&1

"$WARDEN" serve >"$WORK/warden.log" 2>&1 &
WARDEN_PID=$!
PIDS+=("$WARDEN_PID")
"$BENCH" proxy --listen "127.0.0.1:$PROXY_PORT" --upstream "$UPSTREAM" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")

wait_port "$UPSTREAM_PORT" demo-upstream "$UPSTREAM_PID"
wait_port "$PROXY_PORT" proxy "$PROXY_PID"
wait_port "$WARDEN_PORT" warden "$WARDEN_PID"
for _ in $(seq 1 200); do
  curl -fsS -o /dev/null "$WURL/readyz" 2>/dev/null && break
  sleep 0.05
done
say "demo upstream $UPSTREAM (pid $UPSTREAM_PID), bare proxy :$PROXY_PORT (pid $PROXY_PID), warden $WURL (pid $WARDEN_PID)"

# A client-credentials token for the gateway (RFC 8707 resource = the server's canonical
# URI). Every cell sends it, so all three get byte-identical requests; the demo ignores it.
token() {
  curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    --data-urlencode "resource=$RESOURCE" -d scope=notes:read "$WURL/oauth/token" \
    >"$WORK/token.json" || die "the token request failed"
  json "$WORK/token.json" 'j.access_token'
}

# 3. Load.
bench() { # NAME PID URL FILE EXTRA-ARGS...
  local name=$1 pid=$2 url=$3 file=$4
  shift 4
  say "$file: $WARM warm-up + $WIN $*"
  # In the background and waited for, so that a signal to this script stops it at once.
  BENCH_TOKEN=$TOKEN "$BENCH" --label "$name" --server-pid "$pid" --concurrency "$CONCURRENCY" \
    --duration "$WIN" --warmup "$WARM" --threads "$BENCH_THREADS" "$@" \
    mcp --url "$url" >"$WORK/$file.json" &
  LOAD_PID=$!
  wait "$LOAD_PID" || die "$file failed (see above)"
  LOAD_PID=
}
cells() { # the three ways, interleaved (uses TAG and the extra load arguments)
  TOKEN=$(token)
  bench direct "$UPSTREAM_PID" "$UPSTREAM" "direct-$TAG" "$@"
  bench proxy "$PROXY_PID" "http://127.0.0.1:$PROXY_PORT/mcp" "proxy-$TAG" "$@"
  bench gateway "$WARDEN_PID" "$RESOURCE" "gateway-$TAG" "$@"
}

# Prewarm each way briefly (connection pools, allocator), unrecorded.
TAG=prewarm WIN=1s WARM=1ms cells
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  TAG=$ROUND WIN=$DURATION WARM=$WARMUP cells
done
TAG=rate WIN=$DURATION WARM=$WARMUP cells --rate "$RATE"

# 4. Token validation, in-process (the servers are idle now).
say "cargo bench -p warden-server --bench validate ($VALIDATE_TOKENS tokens)"
(cd "$ROOT" && VALIDATE_TOKENS=$VALIDATE_TOKENS cargo bench --quiet -p warden-server --bench validate \
  2>"$WORK/validate.log" >"$WORK/validate.json") || die "the validation benchmark failed"

# 5. Report.
mkdir -p "$OUT_DIR"
WARDEN_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
WARDEN_DIRTY=$(cd "$ROOT" && [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && echo true || echo false)
ELAPSED=$(($(date +%s) - T0))
set +e
DURATION=$DURATION WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY RATE=$RATE ROUNDS=$ROUNDS \
  BENCH_THREADS=$BENCH_THREADS WARDEN_REV=$WARDEN_REV WARDEN_DIRTY=$WARDEN_DIRTY \
  LOAD_BEFORE=$LOAD_BEFORE ELAPSED=$ELAPSED \
  node "$ROOT/bench/gateway-report.mjs" "$WORK" "$OUT"
RC=$?
set -e
if [[ $RC -eq 4 ]]; then
  [[ $STRICT == 1 ]] && exit 1
  exit 0
fi
exit "$RC"
