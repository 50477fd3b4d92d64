#!/bin/bash
# Instructions per live-stream client frame, everything the server process runs included
# (docs/OPERATIONS.md, "Live stream cost").
#
#   cargo build --release -p license-demo
#   license-demo/benches/stream_callgrind/run.sh target/release/license-demo /tmp/stream.callgrind
#   callgrind_annotate /tmp/stream.callgrind.1 | grep "PROGRAM TOTALS"   # divide by "frames"
#
# The release server runs under callgrind with the stream bench's load (`stress --workers 4
# --rate 10`: 20 events/s); N raw SSE readers (default 200, Python asyncio: sse.py) connect and
# warm up for 10 s; the counters are zeroed, 30 s are counted and dumped (OUT.1), and the frames
# the readers received in between are printed. Needs valgrind (callgrind_control), curl, python3.
set -euo pipefail
BIN=$1; OUT=$2; PORT=${PORT:-18555}; N=${N:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" --bind 127.0.0.1:"$PORT" \
  --db "$WORK/l.db" --log warn --push-delay-ms 100 --max-streams 100000 --usage off \
  >"$WORK/server.log" 2>&1 &
VPID=$!
for _ in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$PORT/realtime/stats" && break; sleep 1; done
"$BIN" stress --target "http://127.0.0.1:$PORT" --workers 4 --rate 10 --ops 100000 --no-progress >/dev/null 2>&1 &
SPID=$!
sleep 3
python3 "$HERE/sse.py" 127.0.0.1 "$PORT" "$N" 50 >"$WORK/frames.log" &
PYPID=$!
sleep 10
T0=$(date +%s.%N); callgrind_control -z "$VPID" >/dev/null
sleep 30
callgrind_control -d "$VPID" >/dev/null; T1=$(date +%s.%N)
wait "$PYPID"
kill "$SPID"; kill -INT "$VPID"; wait "$VPID" 2>/dev/null || true
python3 - "$T0" "$T1" "$WORK/frames.log" <<'PY'
import sys
t0, t1, log = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
rows = [tuple(map(float, l.split())) for l in open(log)]
def at(t): return min(rows, key=lambda r: abs(r[0] - t))[1]
print("frames", int(at(t1) - at(t0)))
PY
