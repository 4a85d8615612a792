#!/usr/bin/env bash
# The big burst at full size: 500 SSE + 500 WebSocket subscribers on one topic, a
# 10,000-event burst published as fast as possible, every subscriber checked for all
# 10,000 events complete and in order (tests/interop/burst.py does the work).
#
#   tests/interop/burst.sh [burst.py options: --sse N --ws N --events N --publishers N ...]
#
# PUSHBENCH_BIN=path   use this binary (default: cargo build --release -p pushbench)
# PUSHBENCH_SERVE_ARGS="..."   extra flags for `pushbench serve` (default: none, all defaults)
# PUSHBENCH_INTEROP_VENV=dir   the Python venv with `websockets` (created if missing)
# Needs about 2,100 open files per process (ulimit -n) and takes about a minute on 2 cores.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
case "${1:-}" in -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

VENV="${PUSHBENCH_INTEROP_VENV:-$HOME/.cache/pushbench-interop/venv}"
if ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'websockets>=13'
fi
if [ -n "${PUSHBENCH_BIN:-}" ]; then
    BIN="$PUSHBENCH_BIN"
else
    (cd "$ROOT" && cargo build -q --release -p pushbench)
    TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
    BIN="$TARGET_DIR/release/pushbench"
fi

# Each side holds one socket per subscriber; raise the soft limit if it is low.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
echo "open files allowed: $(ulimit -n); cores: $(nproc)"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
LOG="$(mktemp "${TMPDIR:-/tmp}/pushbench-burst-server.XXXXXX")"
# shellcheck disable=SC2086 # PUSHBENCH_SERVE_ARGS is a list of flags
"$BIN" serve --addr "127.0.0.1:$PORT" ${PUSHBENCH_SERVE_ARGS:-} >"$LOG" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
    sleep 0.1
done

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "server: $BIN serve --addr 127.0.0.1:$PORT ${PUSHBENCH_SERVE_ARGS:-}"
echo "client: burst.py http://127.0.0.1:$PORT $*"
START=$(date +%s)
rc=0
timeout 900 "$VENV/bin/python" "$HERE/burst.py" "http://127.0.0.1:$PORT" "$@" || rc=$?
echo "wall time: $(($(date +%s) - START)) s"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
exit "$rc"
