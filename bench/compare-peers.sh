#!/usr/bin/env bash
# pulse against its peers, side by side on this machine, against these targets:
#   polling   GET /api/count req/s under wrk -t1 -c50, against nginx (1 worker, constant JSON)
#   SSE       N subscribers at one change per second, against nchan: p99 delivery latency,
#             server RSS per connection, server CPU per delivered update, bytes per update
#   capacity  MAX_CLIENTS SSE subscribers on one pulse process: errors and p99
# Every figure is measured on the same run, pulse and peer back to back, with the same
# measurers (wrk; `pulse bench` for SSE clients; /proc for server CPU and memory), so the ratios
# mean something on a shared machine even when the absolute numbers move with its load.
#
# Usage: bench/compare-peers.sh            (about 4 minutes)
# Knobs (environment): REPS=3 POLL_SECS=10 SSE_CLIENTS=10000 MAX_CLIENTS=19000 SSE_SECS=15
#   PULSE_THREADS=1 (tokio workers; nginx runs 1 worker) PULSE_PORT=28004 PEER_PORT=28090
#   PEERS_CONF=bench/nginx-nchan.conf
#   PULSE_ARGS="--fast-path false" (extra `pulse serve` flags, e.g. to measure the full path)
# Needs Debian's nginx, libnginx-mod-nchan, wrk and curl (installed with apt-get when missing)
# and `pulse bench` (the load generator) in this build.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
POLL_SECS=${POLL_SECS:-10}
SSE_CLIENTS=${SSE_CLIENTS:-10000}
MAX_CLIENTS=${MAX_CLIENTS:-19000}
SSE_SECS=${SSE_SECS:-15}
PULSE_THREADS=${PULSE_THREADS:-1}
PULSE_PORT=${PULSE_PORT:-28004}
PEER_PORT=${PEER_PORT:-28090}
PEERS_CONF=${PEERS_CONF:-bench/nginx-nchan.conf}
PULSE_ARGS=${PULSE_ARGS:-}

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing+=(libnginx-mod-nchan)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
    echo "==> installing ${missing[*]} with apt-get" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
[ -f "$PEERS_CONF" ] || { echo "no peer config at $PEERS_CONF (set PEERS_CONF)" >&2; exit 1; }

echo "==> cargo build --release" >&2
cargo build --release --quiet
PULSE=$PWD/target/release/pulse
"$PULSE" bench --help >/dev/null 2>&1 || { echo "this build has no 'pulse bench'" >&2; exit 1; }

work=$(mktemp -d /tmp/pulse-peers.XXXXXX)
sed -e "s#127.0.0.1:18090#127.0.0.1:$PEER_PORT#" -e "s#/tmp/nginxrun#$work#g" "$PEERS_CONF" \
    >"$work/nginx.conf"
pulse_pid=""
publisher_pid=""
cleanup() {
    [ -n "$publisher_pid" ] && kill "$publisher_pid" 2>/dev/null || true
    [ -n "$pulse_pid" ] && kill "$pulse_pid" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # wait_port PORT PATH
    for _ in $(seq 100); do
        curl -s -o /dev/null -m 1 "http://127.0.0.1:$1$2" && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2
    exit 1
}
start_pulse() {
    stop_pulse
    TOKIO_WORKER_THREADS=$PULSE_THREADS "$PULSE" --addr "127.0.0.1:$PULSE_PORT" --tick 1s \
        --change-probability 1 $PULSE_ARGS >"$work/pulse.log" 2>&1 &
    pulse_pid=$!
    wait_port "$PULSE_PORT" /healthz
}
stop_pulse() {
    if [ -n "$pulse_pid" ]; then
        kill "$pulse_pid" 2>/dev/null || true
        wait "$pulse_pid" 2>/dev/null || true
        pulse_pid=""
    fi
}
start_peer() { # a fresh nginx, so its memory belongs to this run
    stop_peer
    nginx -c "$work/nginx.conf"
    wait_port "$PEER_PORT" /api/count
    peer_pid=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
}
stop_peer() {
    if [ -f "$work/nginx.pid" ]; then
        nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true
        while [ -f "$work/nginx.pid" ]; do sleep 0.1; done
    fi
}
# Publishes a pulse-shaped Snapshot to nchan once a second (pulse's --tick 1s), one line per
# publish in $work/published, so `pulse bench` reads both servers the same way.
start_publisher() {
    : >"$work/published"
    (
        id=1
        while true; do
            id=$((id + 1))
            ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
            curl -s -o /dev/null -X POST "http://127.0.0.1:$PEER_PORT/pub" \
                -d "{\"count\":$((50 + id % 7)),\"id\":$id,\"timestamp\":\"$ts\"}"
            echo "$(date +%s.%N)" >>"$work/published"
            sleep 1
        done
    ) &
    publisher_pid=$!
}
stop_publisher() {
    [ -n "$publisher_pid" ] && kill "$publisher_pid" 2>/dev/null || true
    publisher_pid=""
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
rps() { wrk -t1 -c50 -d"${POLL_SECS}s" "http://127.0.0.1:$1/api/count" | awk '/Requests\/sec/ {print $2}'; }

# Runs `pulse bench` (SSE, N clients) against PORT while sampling the server PID from /proc:
# time, open files, CPU ticks, RSS. Leaves $work/NAME.json and $work/NAME.samples.
sse_run() { # sse_run NAME PORT PID N CHANGES_CMD
    local name=$1 port=$2 pid=$3 n=$4 changes=$5
    grep VmRSS "/proc/$pid/status" | awk '{print $2}' >"$work/$name.rss0"
    (
        while kill -0 "$pid" 2>/dev/null; do
            fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
            echo "$(date +%s.%N) $fds $(awk '{print $14 + $15}' "/proc/$pid/stat") \
$(awk '/VmRSS/ {print $2}' "/proc/$pid/status") $($changes)"
            sleep 0.25
        done
    ) >"$work/$name.samples" &
    local sampler=$!
    "$PULSE" bench --target "http://127.0.0.1:$port" --transports sse --clients "$n" \
        --duration "${SSE_SECS}s" --quiet --json "$work/$name.json" >"$work/$name.txt" 2>&1 || true
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
}
pulse_changes() { curl -s -m 1 "http://127.0.0.1:$PULSE_PORT/api/count" | sed -E 's/.*"id":([0-9]+).*/\1/'; }
peer_changes() { wc -l <"$work/published"; }

# Bytes on the wire per update against the event's own frame (id:, data: and the blank line),
# read by a raw client after the opening event.
frame_overhead() { # frame_overhead PORT -> "WIRE_BYTES FRAME_BYTES" over three events
    python3 - "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
s.settimeout(10)
buf = b""
while not (b"\r\n\r\n" in buf and b"\n\n" in buf.split(b"\r\n\r\n", 1)[1]):
    buf += s.recv(65536)  # the head and whatever the stream opens with
wire, got = 0, b""
while got.count(b"\ndata:") < 3 or not got.endswith((b"\n\n", b"\n\n\r\n")):
    data = s.recv(65536)
    wire += len(data)
    got += data
lines = [l for l in got.split(b"\n") if l.startswith((b"id:", b"data:"))]
events = got.count(b"\ndata:")
print(wire, sum(len(l) + 1 for l in lines) + events)
PY
}

echo "==> polling: wrk -t1 -c50 -d${POLL_SECS}s, $REPS rounds, pulse and nginx back to back" >&2
start_pulse
start_peer
poll_pulse=()
poll_peer=()
poll_loads=()
for i in $(seq "$REPS"); do
    poll_loads+=("$(load)")
    if ((i % 2)); then
        poll_peer+=("$(rps "$PEER_PORT")")
        poll_pulse+=("$(rps "$PULSE_PORT")")
    else
        poll_pulse+=("$(rps "$PULSE_PORT")")
        poll_peer+=("$(rps "$PEER_PORT")")
    fi
    echo "    round $i (load ${poll_loads[-1]}): pulse ${poll_pulse[-1]}  nginx ${poll_peer[-1]}" >&2
done

echo "==> SSE: $SSE_CLIENTS subscribers, ${SSE_SECS}s, one change per second" >&2
sse_load_pulse=$(load)
start_pulse
pulse_bytes=$(frame_overhead "$PULSE_PORT")
sse_run pulse-sse "$PULSE_PORT" "$pulse_pid" "$SSE_CLIENTS" pulse_changes
stop_pulse
sse_load_peer=$(load)
start_peer
start_publisher
peer_bytes=$(frame_overhead "$PEER_PORT")
sse_run nchan-sse "$PEER_PORT" "$peer_pid" "$SSE_CLIENTS" peer_changes
stop_publisher
stop_peer

echo "==> capacity: $MAX_CLIENTS subscribers on one pulse process" >&2
max_load=$(load)
start_pulse
sse_run pulse-max "$PULSE_PORT" "$pulse_pid" "$MAX_CLIENTS" pulse_changes
stop_pulse

python3 - "$work" "$SSE_CLIENTS" "$MAX_CLIENTS" "${poll_pulse[*]}" "${poll_peer[*]}" \
    "$pulse_bytes" "$peer_bytes" "${poll_loads[*]}" "$sse_load_pulse" "$sse_load_peer" "$max_load" <<'PY'
import json, statistics, sys
work, n, n_max = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
poll_pulse = [float(x) for x in sys.argv[4].split()]
poll_peer = [float(x) for x in sys.argv[5].split()]
pulse_bytes, peer_bytes = [list(map(int, a.split())) for a in sys.argv[6:8]]
loads = sys.argv[8:]

def sse(name, n):
    run = json.load(open(f"{work}/{name}.json"))["runs"][0]
    rss0 = int(open(f"{work}/{name}.rss0").read())
    rows = []
    for line in open(f"{work}/{name}.samples"):
        parts = line.split()
        if len(parts) == 5 and parts[4].isdigit():
            rows.append([float(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4])])
    full = [r for r in rows if r[1] >= n]  # every subscriber connected
    out = dict(connected=run["connected"], errors=run["connect_errors"] + run["http_errors"]
               + run["disconnects"], p99=run["latency_ms"]["p99_ms"], p50=run["latency_ms"]["p50_ms"],
               cpu_us=None, rss_kb=None)
    if len(full) >= 2:
        first, last = full[0], full[-1]
        updates = (last[4] - first[4]) * n
        if updates > 0:
            out["cpu_us"] = (last[2] - first[2]) / 100 * 1e6 / updates
        out["rss_kb"] = (max(r[3] for r in full) - rss0) / n
    return out

p, q, m = sse("pulse-sse", n), sse("nchan-sse", n), sse("pulse-max", n_max)
med = statistics.median
rows = []
def row(target, pulse, peer, goal, fmt="{:.0f}", lower_better=True):
    ratio = "–" if pulse is None or peer in (None, 0) else f"{pulse / peer:.2f}×"
    f = lambda v: "–" if v is None else fmt.format(v)
    rows.append((target, f(pulse), f(peer), ratio, goal))
row("1 polling req/s (median of rounds)", med(poll_pulse), med(poll_peer), "≥ 1.00× nginx")
row(f"2 SSE p99 delivery ms, {n} subs", p["p99"], q["p99"], "≤ 1.00× nchan", "{:.1f}")
row(f"2 SSE server RSS KB / connection", p["rss_kb"], q["rss_kb"], "≤ 0.50× nchan", "{:.2f}")
row(f"4 SSE wire bytes / frame bytes", pulse_bytes[0] / max(1, pulse_bytes[1]),
    peer_bytes[0] / max(1, peer_bytes[1]), "pulse ≤ 1.15", "{:.3f}")
row(f"5 SSE server CPU µs / delivered update", p["cpu_us"], q["cpu_us"], "≤ 1.00× nchan", "{:.2f}")
row(f"3 {n_max} subs: connected", m["connected"], None, f"= {n_max}")
row(f"3 {n_max} subs: errors", m["errors"], None, "0")
row(f"3 {n_max} subs: p99 delivery ms", m["p99"], None, "< 1000", "{:.1f}")
w = [max(len(r[i]) for r in rows + [("target", "pulse", "peer", "ratio", "goal")]) for i in range(5)]
line = lambda r: "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
print(line(("target", "pulse", "peer", "ratio", "goal")))
print("  ".join("-" * x for x in w))
for r in rows:
    print(line(r))
rounds = loads[0].split()
rounds = ["/".join(rounds[i:i + 3]) for i in range(0, len(rounds), 3)]
print(f"\nload averages (1/5/15 min): polling rounds {', '.join(rounds)}; SSE pulse "
      f"{loads[1].replace(' ', '/')}, nchan {loads[2].replace(' ', '/')}; capacity "
      f"{loads[3].replace(' ', '/')}")
print(f"polling rounds: pulse {poll_pulse}, nginx {poll_peer}")
print(f"SSE p50 ms: pulse {p['p50']}, nchan {q['p50']}; capacity run p50 {m['p50']}")
PY
echo "raw results: $work" >&2
