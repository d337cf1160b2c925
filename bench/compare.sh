#!/usr/bin/env bash
# bench/compare.sh — ringserve side by side with its peers, on one machine, in
# one go (docs/perf.md "Side by side with peers"):
#   1. cached inference over HTTP  vs  nginx serving the same bytes as a static
#      file — wrk, same connections, same duration;
#   2. a cache hit over the framed protocol  vs  memcached `get` of a value of
#      the same size — `ringserve bench`, same concurrency;
#   3. identity through coordinator -> worker  vs  straight to the worker —
#      the engine's own overhead, p50 and p99 (one connection);
#   4. mlp-bench with dynamic batching  vs  batching off, at the same offered
#      rate near saturation (open loop, latency from the intended send time);
#   5. io_uring  vs  epoll for 1 and 2 (the ringserve side only).
# Peers come from Debian packages (nginx-light, memcached, wrk; installed when
# missing), listen on free loopback ports and are stopped at the end, also on
# failure. Prints each pair and its ratio; --json prints one JSON document.
#
#   bench/compare.sh [--json] [--duration S] [--warmup S] [--connections N]
#                    [--repeat N] [--build DIR] [--only 1,2,3,4,5] [--keep]
#                    [--pin on|off] [--io-sched normal|batch] [--layout shared|split]
# --repeat N runs the whole sequence N times (servers restarted each time)
# and reports each value's median and the median of the per-run ratios.
# --pin off runs ringserve with `topology: {pin: false}`: its threads float
# like the peers' (nginx workers and memcached do not pin), which helps on a
# box the load generator shares; on (the default) is ringserve's own default.
# --io-sched batch runs ringserve with `topology: {io_sched: batch}`: its io
# loop threads do not preempt the load generator when they wake on its CPU.
# --layout split (the default with 2 CPUs or more) gives the load generator
# (wrk, ringserve bench) the first CPU of this script's cpuset and every server
# under test (ringserve serve and its worker, nginx, memcached) the others, all
# through taskset, so each server gets the same CPUs and none competes with
# the client; --layout shared lets all of them share every CPU and the kernel
# place them. Each server runs as many threads/workers as it has CPUs.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build"
DURATION=3
WARMUP=1
CONNS=32
JSON=0
ONLY="1,2,3,4,5"
KEEP=0
PIN=on
IO_SCHED=normal
LAYOUT=""
REPEAT=1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

usage() { awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; }  # the header comment
while [ $# -gt 0 ]; do
  case "$1" in
    --json) JSON=1 ;;
    --duration) DURATION="$2"; shift ;;
    --warmup) WARMUP="$2"; shift ;;
    --connections) CONNS="$2"; shift ;;
    --build) BUILD="$(cd "$2" && pwd)"; shift ;;
    --only) ONLY="$2"; shift ;;
    --repeat) REPEAT="$2"; shift ;;
    --keep) KEEP=1 ;;
    --pin) PIN="$2"; shift ;;
    --io-sched) IO_SCHED="$2"; shift ;;
    --layout) LAYOUT="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$REPEAT" in ''|*[!0-9]*|0) echo "compare.sh: --repeat '$REPEAT': expected a positive integer" >&2; exit 2 ;; esac
[[ "$PIN" =~ ^(on|off)$ ]] || { echo "compare.sh: --pin '$PIN': expected on or off" >&2; exit 2; }
[[ "$IO_SCHED" =~ ^(normal|batch)$ ]] || { echo "compare.sh: --io-sched '$IO_SCHED': expected normal or batch" >&2; exit 2; }
[[ "$LAYOUT" =~ ^(|shared|split)$ ]] || { echo "compare.sh: --layout '$LAYOUT': expected shared or split" >&2; exit 2; }
[[ "$ONLY" =~ ^[1-5](,[1-5])*$ ]] || { echo "compare.sh: --only '$ONLY': expected numbers 1-5 separated by commas" >&2; exit 2; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# ---- where each side runs (--layout) ----------------------------------------------
# CLIENT / SERVER prefix the load generator's and the servers' commands.
read -r CPUS_ALL CLIENT_CPU SERVER_CPUS NSERVER_CPUS < <("$PY" -c '
import os
c = sorted(os.sched_getaffinity(0))
print(",".join(map(str, c)), c[0], ",".join(map(str, c[1:])) or "-", len(c) - 1)')
CLIENT=(); SERVER=(); SERVER_THREADS=$((NSERVER_CPUS + 1))  # every CPU of the cpuset
if [ -z "$LAYOUT" ]; then  # the default: split where there is a CPU to split off
  if [ "$NSERVER_CPUS" -ge 1 ]; then LAYOUT=split; else LAYOUT=shared; fi
fi
if [ "$LAYOUT" = split ]; then
  [ "$NSERVER_CPUS" -ge 1 ] || { echo "compare.sh: --layout split needs 2 CPUs or more (cpuset $CPUS_ALL)" >&2; exit 2; }
  CLIENT=(taskset -c "$CLIENT_CPU"); SERVER=(taskset -c "$SERVER_CPUS"); SERVER_THREADS=$NSERVER_CPUS
fi
say() { if [ "$JSON" = 1 ]; then echo "compare.sh: $*" >&2; else echo "== $*"; fi; }

RS="$BUILD/ringserve"
MLP_WEIGHTS="$BUILD/models/mlp-bench/1/model.safetensors"
[ -x "$RS" ] || { echo "compare.sh: $RS not built (ninja -C $BUILD)" >&2; exit 1; }

# ---- peers from Debian ---------------------------------------------------------
need_pkgs=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
command -v memcached >/dev/null 2>&1 || need_pkgs+=(memcached)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "compare.sh: needs ${need_pkgs[*]}: sudo apt-get install -y ${need_pkgs[*]}" >&2
    exit 1
  fi
  say "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
  # the packages start system services: this script runs its own instances
  for s in nginx memcached; do systemctl stop "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true; done
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# ---- scratch space, processes, cleanup ----------------------------------------
T="$(mktemp -d /tmp/rs-compare-XXXXXX)"
chmod 755 "$T"   # nginx workers (user nobody) read the static file
PIDS=()
CACHE_NAME="rs-compare-$$"
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  rm -f "/dev/shm/$CACHE_NAME"
  if [ "$KEEP" = 1 ]; then echo "compare.sh: kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port [seconds]
  local i
  for i in $(seq 1 $((${2:-30} * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "compare.sh: nothing listens on 127.0.0.1:$1" >&2
  return 1
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# ---- the model repository: identity (cache off / on), mlp-bench (batching on / off)
M="$T/models"
mkdir -p "$M/identity/1" "$M/identity-cached/1" "$M/identity-nodelay/1"
cp "$ROOT/models/identity/1/model.yaml" "$M/identity/1/"
sed 's/^name: identity$/name: identity-cached/; s/^cache: off$/cache: on/' \
  "$ROOT/models/identity/1/model.yaml" > "$M/identity-cached/1/model.yaml"
# the same without the batcher's wait for company: the engine's path alone
sed 's/^name: identity$/name: identity-nodelay/; s/max_queue_delay_us: .*/max_queue_delay_us: 0/' \
  "$ROOT/models/identity/1/model.yaml" > "$M/identity-nodelay/1/model.yaml"
IDENTITY_DELAY_US=$(sed -n 's/^ *max_queue_delay_us: *//p' "$ROOT/models/identity/1/model.yaml")
MODELS="identity, identity-cached, identity-nodelay"
if want 4; then
  [ -f "$MLP_WEIGHTS" ] || { echo "compare.sh: $MLP_WEIGHTS missing (ninja -C $BUILD)" >&2; exit 1; }
  for v in batch nobatch; do
    mkdir -p "$M/mlp-$v/1"
    ln -s "$MLP_WEIGHTS" "$M/mlp-$v/1/model.safetensors"
    sed "s/^name: mlp-bench$/name: mlp-$v/" "$BUILD/models/mlp-bench/1/model.yaml" > "$M/mlp-$v/1/model.yaml"
  done
  # batching off: one request per batch (the model's other settings unchanged)
  sed -i 's/^batchable: true$/batchable: false/; s/^max_batch_size: .*/max_batch_size: 1/; /preferred_batch_sizes/d' \
    "$M/mlp-nobatch/1/model.yaml"
  MODELS="$MODELS, mlp-batch, mlp-nobatch"
  MLP_DELAY_US=$(sed -n 's/^ *max_queue_delay_us: *//p' "$M/mlp-batch/1/model.yaml")
  MLP_MAX_BATCH=$(sed -n 's/^max_batch_size: *//p' "$M/mlp-batch/1/model.yaml")
fi

# ringserve serve (coordinator + one worker) with the given io backend.
SERVE_PID=""; SERVE_CHILDREN=""; HTTP_PORT=""; FRAMED_PORT=""; WORKER_PORT=""
start_serve() { # backend
  WORKER_PORT=$(free_port)
  cat > "$T/serve-$1.yaml" <<YAML
server:
  host: 127.0.0.1
  http_port: 0
  framed_port: 0
  io_threads: $SERVER_THREADS           # one per CPU the servers get (--layout)
  request_arena_bytes: 1048576   # 4: one full mlp-bench batch in one request (128 x 1024 FP32)
io:
  backend: $1
topology:
  pin: $([ "$PIN" = on ] && echo true || echo false)   # --pin
  io_sched: $IO_SCHED   # --io-sched
models:
  repository: [$M]
  load: [$MODELS]
cache:
  name: $CACHE_NAME
  capacity_mb: 16
workers:
  count: 1
  base_port: $WORKER_PORT
  models: [$MODELS]
YAML
  rm -f "/dev/shm/$CACHE_NAME"
  "${SERVER[@]}" "$RS" serve --config "$T/serve-$1.yaml" > "$T/serve-$1.log" 2>&1 &
  SERVE_PID=$!
  PIDS+=("$SERVE_PID")
  local i
  for i in $(seq 1 300); do
    if grep -q "http [0-9]*, framed [0-9]*" "$T/serve-$1.log" 2>/dev/null; then break; fi
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$T/serve-$1.log" >&2; exit 1; }
    sleep 0.1
  done
  HTTP_PORT=$(sed -n 's/.*http \([0-9]*\), framed \([0-9]*\).*/\1/p' "$T/serve-$1.log" | head -1)
  FRAMED_PORT=$(sed -n 's/.*http \([0-9]*\), framed \([0-9]*\).*/\2/p' "$T/serve-$1.log" | head -1)
  for i in $(seq 1 300); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/v2/health/ready")" = 200 ]; then
      # serve's worker processes: also stopped by pid at the end, as a safety
      # net (before main 320cdeb serve's SIGTERM left them running)
      SERVE_CHILDREN=$(pgrep -P "$SERVE_PID" || true)
      for c in $SERVE_CHILDREN; do PIDS+=("$c"); done
      return 0
    fi
    sleep 0.1
  done
  echo "compare.sh: ringserve serve ($1) never became ready" >&2; cat "$T/serve-$1.log" >&2; exit 1
}
stop_serve() {
  SERVE_CHILDREN="$SERVE_CHILDREN $(pgrep -P "$SERVE_PID" || true)"
  stop_pid "$SERVE_PID"
  for c in $SERVE_CHILDREN; do kill "$c" 2>/dev/null || true; done
  SERVE_PID=""; SERVE_CHILDREN=""
  rm -f "/dev/shm/$CACHE_NAME"
}

# One `ringserve bench` run -> $R/<name>.json ($R: this repetition's folder)
R=""
# Waits until the coordinator has no request pending: a closed-loop run
# leaves up to --concurrency requests queued when its client hangs up, and
# the next run must not start behind them (a backlog the open loop then
# never catches up with).
wait_idle() {
  [ -n "$SERVE_PID" ] && [ -n "$HTTP_PORT" ] || return 0
  local i n
  for i in $(seq 1 300); do
    n=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^rs_pending_requests[ {]/ {s += $NF} END {print s + 0}')
    [ "$n" = 0 ] && return 0
    sleep 0.1
  done
  echo "compare.sh: ringserve still has $n requests pending after 30 s" >&2
}
rsbench() { # name backend args...
  local name="$1" be="$2"; shift 2
  wait_idle
  say "run $name: ${CLIENT[*]}${CLIENT:+ }ringserve --io-backend=$be bench $*"
  "${CLIENT[@]}" "$RS" --log-level=warn --io-backend="$be" bench "$@" --duration "$DURATION" --warmup "$WARMUP" \
    --json > "$R/$name.json" || true
  echo "${CLIENT[*]}${CLIENT:+ }ringserve --io-backend=$be bench $* --duration $DURATION --warmup $WARMUP" > "$R/$name.cmd"
}
# One wrk run -> $R/<name>.wrk (+ .cmd)
wrkrun() { # name args...
  local name="$1"; shift
  say "run $name: ${CLIENT[*]}${CLIENT:+ }wrk $*"
  # wrk has no warm-up: a short unmeasured run first
  "${CLIENT[@]}" wrk "$@" -d "${WARMUP}s" > /dev/null 2>&1 || true
  "${CLIENT[@]}" wrk --latency "$@" -d "${DURATION}s" > "$R/$name.wrk" 2>&1 || true
  echo "${CLIENT[*]}${CLIENT:+ }wrk --latency $* -d ${DURATION}s" > "$R/$name.cmd"
}

INFER_BODY='{"inputs":[{"name":"x","shape":[1,16],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}'

# ---- peers -------------------------------------------------------------------------
NGINX_PORT=""; MC_PORT=""
if want 1; then
  NGINX_PORT=$(free_port)
  mkdir -p "$T/nginx/html" "$T/nginx/logs"
  chmod 755 "$T/nginx" "$T/nginx/html"
  cat > "$T/nginx/nginx.conf" <<NGX
worker_processes $SERVER_THREADS;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  # as one would tune nginx for a small hot static file: no open/fstat/close
  # per request, the body from the page cache (+11% req/s here)
  sendfile on;
  tcp_nopush on;
  open_file_cache max=64 inactive=60s;
  open_file_cache_valid 60s;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $T/nginx/html;
  }
}
NGX
fi
if want 2; then
  MC_PORT=$(free_port)
  MC_ARGS=(-l 127.0.0.1 -p "$MC_PORT" -U 0 -t "$SERVER_THREADS" -m 64)
  [ "$(id -u)" -eq 0 ] && MC_ARGS+=(-u root)
  "${SERVER[@]}" memcached "${MC_ARGS[@]}" > "$T/memcached.log" 2>&1 &
  MC_PID=$!
  PIDS+=("$MC_PID")
  wait_port "$MC_PORT"
fi

# ---- the runs ------------------------------------------------------------------------
for REP in $(seq 1 "$REPEAT"); do
R="$T/r$REP"
mkdir -p "$R"
[ "$REPEAT" -gt 1 ] && say "repetition $REP of $REPEAT"
for BE in uring epoll; do
  if [ "$BE" = epoll ] && ! want 5; then break; fi
  if [ "$BE" = epoll ] && ! want 1 && ! want 2; then break; fi
  start_serve "$BE"
  say "ringserve serve ($BE): http $HTTP_PORT, framed $FRAMED_PORT, worker $WORKER_PORT"

  if want 1; then
    # the cached answer's bytes become nginx's static file
    curl -s -X POST -H 'Content-Type: application/json' -d "$INFER_BODY" \
      "http://127.0.0.1:$HTTP_PORT/v2/models/identity-cached/infer" > /dev/null
    curl -s -X POST -H 'Content-Type: application/json' -d "$INFER_BODY" \
      "http://127.0.0.1:$HTTP_PORT/v2/models/identity-cached/infer" > "$T/nginx/html/infer.json"
    cat > "$T/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$INFER_BODY'
wrk.headers["Content-Type"] = "application/json"
LUA
    wrkrun "1-ringserve-$BE" -t1 -c"$CONNS" -s "$T/post.lua" "http://127.0.0.1:$HTTP_PORT/v2/models/identity-cached/infer"
    if [ "$BE" = uring ]; then
      "${SERVER[@]}" "$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" -g 'daemon off;' > "$T/nginx/logs/stdout" 2>&1 &
      NGINX_PID=$!
      PIDS+=("$NGINX_PID")
      wait_port "$NGINX_PORT"
      wrkrun "1-nginx" -t1 -c"$CONNS" "http://127.0.0.1:$NGINX_PORT/infer.json"
      stop_pid "$NGINX_PID"
    fi
  fi

  if want 2; then
    # the framed answer's size is the memcached value's size
    FRAME_BYTES=$("$PY" - "$ROOT" "$FRAMED_PORT" <<'PYEOF'
import socket, struct, sys
sys.path.insert(0, sys.argv[1] + "/clients/python")
import ringserve_client as rc
x = rc.Tensor.from_list("x", "FP32", [1, 16], [0.0] * 16)
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
s.sendall(rc.encode_infer_request(1, "identity-cached", [x]))
buf = b""
while len(buf) < 24 or len(buf) < 24 + struct.unpack_from("<I", buf, 16)[0]:
    buf += s.recv(65536)
print(24 + struct.unpack_from("<I", buf, 16)[0])
PYEOF
)
    rsbench "2-ringserve-$BE" "$BE" --framed "127.0.0.1:$FRAMED_PORT" --model identity-cached --concurrency "$CONNS"
    if [ "$BE" = uring ]; then
      rsbench "2-memcached" uring --memcache "127.0.0.1:$MC_PORT" --key "rs-compare" --value-bytes "$FRAME_BYTES" --concurrency "$CONNS"
      echo "$FRAME_BYTES" > "$R/2-value-bytes"
      # the same with a client thread per core: less of the figure is the
      # single client thread's own limit (shared layout only: split gives
      # the client one CPU of its own)
      if [ "$LAYOUT" = shared ]; then
        rsbench "2-ringserve-t2" uring --framed "127.0.0.1:$FRAMED_PORT" --model identity-cached --concurrency "$CONNS" --threads 2
        rsbench "2-memcached-t2" uring --memcache "127.0.0.1:$MC_PORT" --key "rs-compare" --value-bytes "$FRAME_BYTES" --concurrency "$CONNS" --threads 2
      fi
    fi
  fi

  if [ "$BE" = uring ] && want 3; then
    rsbench "3-coordinator" uring --framed "127.0.0.1:$FRAMED_PORT" --model identity --concurrency 1
    rsbench "3-coordinator-nodelay" uring --framed "127.0.0.1:$FRAMED_PORT" --model identity-nodelay --concurrency 1
    rsbench "3-worker" uring --framed "127.0.0.1:$WORKER_PORT" --model identity --concurrency 1
  fi

  if [ "$BE" = uring ] && want 4; then
    # saturation with batching: closed loop with many requests in flight
    rsbench "4-probe" uring --framed "127.0.0.1:$FRAMED_PORT" --model mlp-batch --shape 1,1024 --unique --concurrency 64
    rsbench "4-probe-nobatch" uring --framed "127.0.0.1:$FRAMED_PORT" --model mlp-nobatch --shape 1,1024 --unique --concurrency 64
    RATE=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(max(1, int(r["rps"] * 0.8)))' "$R/4-probe.json")
    echo "$RATE" > "$R/4-rate"
    say "offered rate for 4: $RATE req/s (0.8 x batching's closed-loop saturation)"
    rsbench "4-batching" uring --framed "127.0.0.1:$FRAMED_PORT" --model mlp-batch --shape 1,1024 --unique --rate "$RATE" --concurrency 64
    rsbench "4-nobatching" uring --framed "127.0.0.1:$FRAMED_PORT" --model mlp-nobatch --shape 1,1024 --unique --rate "$RATE" --concurrency 64
    # one batch's compute time: a single request of max_batch_size rows, alone
    rsbench "4-full-batch" uring --framed "127.0.0.1:$FRAMED_PORT" --model mlp-batch --shape "$MLP_MAX_BATCH,1024" --unique --concurrency 1
  fi
  stop_serve
done
done

# ---- report ---------------------------------------------------------------------------
"$PY" - "$T" "$REPEAT" "$JSON" "${MLP_DELAY_US:-0}" "${IDENTITY_DELAY_US:-0}" "$DURATION" "$WARMUP" "${MLP_MAX_BATCH:-0}" "$PIN" \
  "$LAYOUT" "$CLIENT_CPU" "$SERVER_CPUS" "$CPUS_ALL" "$IO_SCHED" <<'PYEOF'
import json, os, re, statistics, sys
t, reps, as_json = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
delay_us, id_delay_us, mlp_max_batch = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[8])
dirs = [os.path.join(t, f"r{k}") for k in range(1, reps + 1)]
layout = {"name": sys.argv[10], "cpus": sys.argv[13]}
if sys.argv[10] == "split":
    layout.update(client_cpus=sys.argv[11], server_cpus=sys.argv[12])
    where = f"load generator on cpu {sys.argv[11]}, servers on cpus {sys.argv[12]}"
else:
    where = f"load generator and servers share cpus {sys.argv[13]}"

def cmd_of(d, name):
    return open(os.path.join(d, name + ".cmd")).read().strip()

def ran(d, name):
    return os.path.exists(os.path.join(d, name + ".cmd"))

def failed(d, name):
    return {"failed": True, "cmd": cmd_of(d, name)} if ran(d, name) else None

def one_bench(d, name):
    p = os.path.join(d, name + ".json")
    try:
        r = json.load(open(p))
    except (OSError, ValueError):
        return failed(d, name)
    lat = r["latency_us"]
    return {"rps": r["rps"], "p50_us": lat["p50"], "p99_us": lat["p99"], "errors": r["errors"]["total"],
            "first_error": r.get("first_error", ""), "cmd": cmd_of(d, name)}

def to_us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

def one_wrk(d, name):
    p = os.path.join(d, name + ".wrk")
    if not os.path.exists(p):
        return failed(d, name)
    txt = open(p).read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", txt)
    if not m:
        return failed(d, name)
    pct = {k: to_us(v, u) for k, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", txt, re.M)}
    errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", txt))
    m2 = re.search(r"Non-2xx or 3xx responses: (\d+)", txt)
    errs += int(m2.group(1)) if m2 else 0
    return {"rps": float(m.group(1)), "p50_us": pct.get("50"), "p99_us": pct.get("99"), "errors": errs,
            "first_error": "", "cmd": cmd_of(d, name)}

def runs(name, wrk=False):
    """One result per repetition (None where it did not run)."""
    return [(one_wrk if wrk else one_bench)(d, name) for d in dirs]

def text(d, name):
    p = os.path.join(d, name)
    return open(p).read().strip() if os.path.exists(p) else "?"

rows = []
def pair(title, a_name, a_runs, b_name, b_runs, metric, higher_better, note_fn=None):
    if not any(a_runs) or not any(b_runs):
        return  # one side not selected with --only
    both = [(a, b) for a, b in zip(a_runs, b_runs) if a and b and not a.get("failed") and not b.get("failed")
            and a[metric] is not None and b[metric] is not None]
    if not both:
        rows.append({"comparison": title, "a": a_name, "b": b_name, "missing": True})
        return
    va = statistics.median(a[metric] for a, _ in both)
    vb = statistics.median(b[metric] for _, b in both)
    ratios = [a[metric] / b[metric] for a, b in both if b[metric]]
    rows.append({"comparison": title, "metric": metric, "a": a_name, "b": b_name, "a_value": va, "b_value": vb,
                 "ratio": statistics.median(ratios) if ratios else None, "ratios": ratios, "runs": len(both),
                 "higher_is_better": higher_better, "note": note_fn(va, vb) if note_fn else "",
                 "a_errors": sum(a["errors"] for a, _ in both), "b_errors": sum(b["errors"] for _, b in both),
                 "a_first_error": next((a["first_error"] for a, _ in both if a["first_error"]), ""),
                 "b_first_error": next((b["first_error"] for _, b in both if b["first_error"]), ""),
                 "a_cmd": both[0][0]["cmd"], "b_cmd": both[0][1]["cmd"]})

nginx = runs("1-nginx", wrk=True)
mc = runs("2-memcached")
vb = text(dirs[0], "2-value-bytes")
for be in ("uring", "epoll"):
    r1 = runs("1-ringserve-" + be, wrk=True)
    pair(f"1 cached infer over HTTP ({be}) vs nginx static", f"ringserve/{be}", r1, "nginx", nginx, "rps", True)
    pair(f"1 p99 ({be}) vs nginx", f"ringserve/{be}", r1, "nginx", nginx, "p99_us", False)
    pair(f"2 framed cache hit ({be}) vs memcached get, {vb} B", f"ringserve/{be}", runs("2-ringserve-" + be),
         "memcached", mc, "rps", True)
pair(f"2 framed cache hit (uring) vs memcached get, {vb} B, 2 client threads", "ringserve/uring",
     runs("2-ringserve-t2"), "memcached", runs("2-memcached-t2"), "rps", True)
w = runs("3-worker")
for name, label in (("3-coordinator", f"batch delay {id_delay_us} us"), ("3-coordinator-nodelay", "batch delay 0")):
    c = runs(name)
    for q in ("p50", "p99"):
        pair(f"3 identity {q} ({label}): coordinator->worker vs direct", "via coordinator", c, "worker direct", w,
             q + "_us", False, lambda a, b: f"overhead {a - b:.1f} us")
pair("4 mlp-bench saturation (closed loop, 64 conns): batching on vs off", "batching", runs("4-probe"),
     "no batching", runs("4-probe-nobatch"), "rps", True)
rate = "/".join(text(d, "4-rate") for d in dirs)  # 0.8 x each repetition's saturation
b, nb = runs("4-batching"), runs("4-nobatching")
pair(f"4 mlp-bench throughput at {rate} req/s offered: batching on vs off", "batching", b, "no batching", nb, "rps", True)
pair(f"4 mlp-bench p99 at {rate} req/s: batching on vs off", "batching", b, "no batching", nb, "p99_us", False,
     lambda a, b_: f"max_queue_delay_us {delay_us}")
# the target: p99 within max_queue_delay_us + one batch's compute time, where
# one batch is a full one (max_batch_size rows, run alone: its p50)
target = [dict(x, p99_us=delay_us + x["p50_us"], errors=0, first_error="") if x and not x.get("failed") else x
          for x in runs("4-full-batch")]
pair(f"4 mlp-bench p99 at {rate} req/s vs max_queue_delay + one {mlp_max_batch}-row batch", "batching", b,
     "delay + batch", target, "p99_us", False, lambda a, b_: "target met" if a <= b_ else "target not met")
pair("5 cached infer over HTTP (wrk): io_uring vs epoll", "uring", runs("1-ringserve-uring", wrk=True),
     "epoll", runs("1-ringserve-epoll", wrk=True), "rps", True)
pair("5 framed cache hit: io_uring vs epoll", "uring", runs("2-ringserve-uring"), "epoll", runs("2-ringserve-epoll"),
     "rps", True)

if as_json:
    print(json.dumps({"duration_s": float(sys.argv[6]), "warmup_s": float(sys.argv[7]), "repeat": reps,
                      "ringserve_pinned": sys.argv[9] == "on", "ringserve_io_sched": sys.argv[14],
                      "layout": layout,
                      "comparisons": rows}, indent=1))
    sys.exit(0)
def fmt(v, metric):
    if v is None:
        return "-"
    return f"{v:,.0f} req/s" if metric == "rps" else f"{v:,.1f} us"
print()
print(f"ringserve threads pinned: {sys.argv[9]} (--pin), io loops sched {sys.argv[14]} (--io-sched); layout {sys.argv[10]} (--layout): {where}")
print(f"{'comparison':<66} {'A':>16} {'B':>16} {'A/B':>7}  errors A/B" + ("  (medians of %d runs)" % reps if reps > 1 else ""))
for r in rows:
    if r.get("missing"):
        print(f"{r['comparison']:<66} {'(failed: no result)':>16}")
        continue
    ratio = f"{r['ratio']:.2f}" if r["ratio"] else "-"
    print(f"{r['comparison']:<66} {fmt(r['a_value'], r['metric']):>16} {fmt(r['b_value'], r['metric']):>16} "
          f"{ratio:>7}  {r['a_errors']}/{r['b_errors']}  {r['note']}")
errs = {}
for r in rows:
    for k in ("a", "b"):
        if r.get(k + "_first_error"):
            errs.setdefault(r[k + "_first_error"], r[k])
if errs:
    print("\nfirst errors:")
    for e, who in errs.items():
        print(f"  {who}: {e}")
print("\ncommands:")
seen = set()
for r in rows:
    for k in ("a_cmd", "b_cmd"):
        if k in r and r[k] not in seen:
            seen.add(r[k])
            print("  " + r[k])
PYEOF
