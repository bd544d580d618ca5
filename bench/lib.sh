# Shared by bench/token.sh and bench/gateway.sh: sourced after the script has set ROOT.
# `bench_start NAME` checks $ROUNDS, names the report ($OUT_DIR, $OUT), makes the work dir
# ($WORK), the process list ($PIDS, $LOAD_PID) and the traps that stop every process on
# exit (and show the tail of each log on failure).

bench_start() { # NAME (for messages, the report and the work dir)
  BENCH_NAME=$1
  [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
  OUT_DIR=$ROOT/bench/out
  OUT=$OUT_DIR/$1-$(date -u +%Y-%m-%dT%H%M%SZ).json
  T0=$(date +%s)
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/warden-$1.XXXXXX")
  PIDS=()
  LOAD_PID=
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

cleanup() {
  local code=$?
  [[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [[ $code -ne 0 && -d $WORK ]]; then
    for f in "$WORK"/*.log; do
      [[ -s $f ]] && { echo "--- tail of $(basename "$f")" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$WORK"
  exit "$code"
}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/%s.sh: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }
# json FILE EXPR: evaluates EXPR on the parsed JSON `j` (node writes the reports anyway).
json() { node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const v=('"$2"'); if (v===undefined) process.exit(3); process.stdout.write(String(v))' "$1"; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_http() { # URL NAME PID: until URL answers 2xx
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || die "$2 exited during start-up"
    sleep 0.05
  done
  die "$2 did not answer $1 within 10 s"
}
wait_port() { # PORT NAME PID: until something listens on PORT
  for _ in $(seq 1 200); do
    ! port_free "$1" && return 0
    kill -0 "$3" 2>/dev/null || die "$2 exited during start-up"
    sleep 0.05
  done
  die "$2 did not listen on port $1 within 10 s"
}
