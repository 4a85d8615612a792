#!/usr/bin/env bash
# Interop checks: drive `pushbench serve` with clients pushbench did not write
# (curl, the Python `websockets` library, headless Chromium's EventSource, WebSocket,
# fetch and sendBeacon) and check every answer against the API table in DESIGN.md.
#
#   tests/interop/run.sh [--no-browser] [--no-install]
#
# PUSHBENCH_BIN=path   use this binary instead of `cargo build -p pushbench`
# PUSHBENCH_INTEROP_VENV=dir   where the Python venv with `websockets` lives
#                             (default ~/.cache/pushbench-interop/venv)
# CHROMIUM=path        the browser (default: chromium on PATH, else /usr/bin/chromium)
#
# Installs what is missing (curl, python3-venv, chromium with apt-get; websockets with
# pip into the venv) unless --no-install. Ends with the line "N passed, M failed" and
# exits non-zero if anything failed. About 25 s once installed (15 s --no-browser).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BROWSER=1
INSTALL=1
for arg in "$@"; do
    case "$arg" in
        --no-browser) BROWSER=0 ;;
        --no-install) INSTALL=0 ;;
        -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $arg (try --help)" >&2; exit 2 ;;
    esac
done

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1${2:+: $2}"; }
# check NAME COMMAND...: passes when the command succeeds.
check() {
    local name="$1"; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# tally FILE: counts the "ok   ..." and "FAIL ..." lines a Python checker printed.
tally() {
    local line
    while IFS= read -r line; do
        case "$line" in
            "ok   "*) PASSED=$((PASSED + 1)) ;;
            "FAIL "*) FAILED=$((FAILED + 1)) ;;
        esac
    done <"$1"
}
summary() {
    echo
    if [ "$FAILED" -ne 0 ]; then echo "server log and outputs kept in $WORK"; fi
    echo "$PASSED passed, $FAILED failed"
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pushbench-interop.XXXXXX")"
SERVER_PID=""
BG_PIDS=()
cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}" $SERVER_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BG_PIDS[@]}" $SERVER_PID; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$FAILED" -eq 0 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- what the checks need -----------------------------------------------------

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
    [ "$INSTALL" -eq 1 ] || return 1
    command -v apt-get >/dev/null || return 1
    if [ "$APT_UPDATED" -eq 0 ]; then
        $SUDO apt-get update -qq >"$WORK/apt.log" 2>&1 || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >>"$WORK/apt.log" 2>&1
}

command -v curl >/dev/null || apt_install curl ca-certificates || { echo "curl is missing and could not be installed" >&2; exit 1; }
command -v python3 >/dev/null || apt_install python3 python3-venv || { echo "python3 is missing" >&2; exit 1; }

VENV="${PUSHBENCH_INTEROP_VENV:-$HOME/.cache/pushbench-interop/venv}"
if ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
    [ "$INSTALL" -eq 1 ] || { echo "no websockets in $VENV (run without --no-install)" >&2; exit 1; }
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        apt_install python3-venv && python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q 'websockets>=13' >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; exit 1; }
fi
PY="$VENV/bin/python"

CHROME=""
if [ "$BROWSER" -eq 1 ]; then
    CHROME="${CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}"
    if [ ! -x "$CHROME" ] && [ -z "${CHROMIUM:-}" ]; then
        echo "installing chromium (first run only) ..."
        apt_install chromium || true
        CHROME="$(command -v chromium || echo /usr/bin/chromium)"
    fi
fi

if [ -n "${PUSHBENCH_BIN:-}" ]; then
    BIN="$PUSHBENCH_BIN"
else
    (cd "$ROOT" && cargo build -q -p pushbench)
    TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
    BIN="$TARGET_DIR/debug/pushbench"
fi
[ -x "$BIN" ] || { echo "no pushbench binary at $BIN" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the server under test -----------------------------------------------------

PORT="$(free_port)"
B="http://127.0.0.1:$PORT"
# Short heartbeats and waits so the checks see them within seconds; a small log so a
# gap is cheap to provoke; a small body limit so 413 and 1009 are cheap too.
"$BIN" serve --addr "127.0.0.1:$PORT" --sse-heartbeat 1s --sse-retry 500ms \
    --ws-ping 1s --ws-pong-timeout 2s --max-wait 5s --retention 50 --max-body 4096 \
    --shutdown-deadline 3s >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null "$B/healthz" && break
    sleep 0.1
done
if ! curl -sf -o /dev/null "$B/healthz"; then
    cat "$WORK/server.log"
    fail "pushbench serve starts and answers /healthz within 10 s"
    summary
    exit 1
fi
echo "pushbench serve on $B (pid $SERVER_PID, binary $BIN)"

# --- curl: polls, long polls, SSE, beacon, metrics, errors --------------------

C=(curl -s --max-time 10)
T="curl"
# publish N: POST {"n":N}; prints the status then the body.
publish() {
    "${C[@]}" -o "$WORK/pub.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "{\"n\":$2}" "$B/topics/$1/events"
    echo " $(cat "$WORK/pub.body")"
}
check "publish: 201 {\"seq\":1}" test "$(publish $T 1)" = '201 {"seq":1}'
check "publish: 201 {\"seq\":2}" test "$(publish $T 2)" = '201 {"seq":2}'
check "publish: 201 {\"seq\":3}" test "$(publish $T 3)" = '201 {"seq":3}'

code=$("${C[@]}" -D "$WORK/poll.h" -o "$WORK/poll.body" -w '%{http_code}' "$B/topics/$T/events?since=0")
check "short poll: 200 with seq 1..3 and next 3" test "$code $(cat "$WORK/poll.body")" = \
    '200 {"events":[{"seq":1,"data":{"n":1}},{"seq":2,"data":{"n":2}},{"seq":3,"data":{"n":3}}],"next":3}'
ETAG=$(grep -i '^etag:' "$WORK/poll.h" | cut -d' ' -f2- | tr -d '\r')
check "short poll: ETag header present" test -n "$ETAG"
check "short poll: 304 with If-None-Match and no body" test "$("${C[@]}" -w '%{http_code} %{size_download}' \
    -H "If-None-Match: $ETAG" "$B/topics/$T/events?since=3")" = "304 0"
check "short poll: nothing new without If-None-Match is 200 with an empty list" test \
    "$("${C[@]}" -w ' %{http_code}' "$B/topics/$T/events?since=3")" = '{"events":[],"next":3} 200'
check "short poll: limit=2 gives seq 2..3" test \
    "$("${C[@]}" "$B/topics/$T/events?since=1&limit=2")" = '{"events":[{"seq":2,"data":{"n":2}},{"seq":3,"data":{"n":3}}],"next":3}'
check "latest: 200 with only the newest event" test \
    "$("${C[@]}" -w ' %{http_code}' "$B/topics/$T/latest")" = '{"seq":3,"data":{"n":3}} 200'
check "latest: 304 with If-None-Match" test \
    "$("${C[@]}" -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$B/topics/$T/latest")" = 304

# Long poll answered by a publish: held, then 200 the moment seq 4 exists.
"${C[@]}" -o "$WORK/lp.body" -w '%{http_code} %{time_total}' "$B/topics/$T/events?since=3&wait=5s" >"$WORK/lp.out" &
LP=$!
sleep 0.5
publish $T 4 >/dev/null
wait $LP || true
read -r code secs <"$WORK/lp.out" || true
check "long poll: answered by a publish with 200 and seq 4 ($secs s)" test \
    "$code $(cat "$WORK/lp.body")" = '200 {"events":[{"seq":4,"data":{"n":4}}],"next":4}'
check "long poll: answered within 3 s, not at the end of wait=5s" python3 -c "import sys; sys.exit(not 0.4 < $secs < 3)"
IFS=' ' read -r code secs <<<"$("${C[@]}" -o /dev/null -w '%{http_code} %{time_total}' "$B/topics/$T/events?since=4&wait=1s")"
check "long poll: 204 when wait=1s ends ($secs s)" python3 -c "import sys; sys.exit(not ('$code' == '204' and 0.9 < $secs < 3))"

# SSE: a stream from since=2 sees 3, 4, then 5 published while it is open, plus
# retry advice and heartbeats (the server sends one every second here).
"${C[@]}" -N -D "$WORK/sse.h" --max-time 2.6 "$B/topics/$T/sse?since=2" >"$WORK/sse.out" || true &
SSE=$!
sleep 0.7
publish $T 5 >/dev/null
wait $SSE || true
ids() { grep -a '^id: ' "$1" | cut -d' ' -f2 | tr '\n' ' '; }
check "sse: Content-Type text/event-stream" grep -qi '^content-type: text/event-stream' "$WORK/sse.h"
check "sse: Cache-Control no-cache and X-Accel-Buffering no" \
    bash -c "grep -qi '^cache-control: no-cache' '$WORK/sse.h' && grep -qi '^x-accel-buffering: no' '$WORK/sse.h'"
check "sse: retry: 500 first" test "$(head -n1 "$WORK/sse.out")" = "retry: 500"
check "sse: id: 3 4 5 in order (5 published while streaming)" test "$(ids "$WORK/sse.out")" = "3 4 5 "
check "sse: data: lines carry the events" test "$(grep -a '^data: ' "$WORK/sse.out" | tr '\n' ' ')" = \
    'data: {"n":3} data: {"n":4} data: {"n":5} '
check "sse: ': heartbeat' comments" grep -q '^: heartbeat$' "$WORK/sse.out"
"${C[@]}" -N --max-time 1.2 -H 'Last-Event-ID: 3' "$B/topics/$T/sse" >"$WORK/sse2.out" || true
check "sse: resume with Last-Event-ID: 3 gives 4 5" test "$(ids "$WORK/sse2.out")" = "4 5 "
"${C[@]}" -N --max-time 1.2 -H 'Last-Event-ID: 4' "$B/topics/$T/sse?since=1" >"$WORK/sse3.out" || true
check "sse: Last-Event-ID wins over ?since=" test "$(ids "$WORK/sse3.out")" = "5 "

# Gaps: retention is 50, so after 60 events the cursor 1 is outside the log.
urls=()
for _ in $(seq 60); do urls+=("$B/topics/gap/events"); done
"${C[@]}" -X POST -H 'Content-Type: application/json' -d '{"g":1}' "${urls[@]}" >/dev/null
code=$("${C[@]}" -o "$WORK/gap.body" -w '%{http_code}' "$B/topics/gap/events?since=1")
is_error() { # is_error FILE CODE: a JSON object with "error" = CODE and a non-empty "detail"
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not (j.get("error")==sys.argv[2] and isinstance(j.get("detail"),str) and j["detail"]))' "$1" "$2"
}
check "gap: short poll since=1 is 410 {error: gap}" is_error "$WORK/gap.body" gap
check "gap: short poll status 410" test "$code" = 410
check "gap: 410 names the first retained seq (11)" python3 -c "import json,sys; sys.exit(json.load(open('$WORK/gap.body'))['first_seq'] != 11)"
check "gap: long poll since=1 is 410 too" test \
    "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/topics/gap/events?since=1&wait=1s")" = 410
"${C[@]}" -N --max-time 1.2 -H 'Last-Event-ID: 1' "$B/topics/gap/sse" >"$WORK/ssegap.out" || true
check "gap: SSE from Last-Event-ID: 1 sends event: gap, then id: 11" bash -c \
    "grep -aq '^event: gap\$' '$WORK/ssegap.out' && [ \"\$(grep -a '^id: ' '$WORK/ssegap.out' | head -n1)\" = 'id: 11' ]"

# Other ways clients send and read: Expect: 100-continue, a chunked request body,
# and HTTP/1.0 (no chunked responses: the SSE stream is delimited by the close).
printf '{"pad":"%s"}' "$(head -c 2000 /dev/zero | tr '\0' 'y')" >"$WORK/2k.json"
check "publish with Expect: 100-continue (2 kB body): 201" test "$("${C[@]}" -o /dev/null -w '%{http_code}' \
    -H 'Expect: 100-continue' -H 'Content-Type: application/json' --data-binary "@$WORK/2k.json" "$B/topics/ways/events")" = 201
check "publish with a chunked request body: 201" test "$("${C[@]}" -o /dev/null -w '%{http_code}' \
    -H 'Transfer-Encoding: chunked' --data-binary "@$WORK/2k.json" "$B/topics/ways/events")" = 201
"${C[@]}" --http1.0 -N --max-time 1.2 -D "$WORK/sse10.h" "$B/topics/ways/sse?since=0" >"$WORK/sse10.out" || true
check "HTTP/1.0 SSE: 200, not chunked, id: 1 2" bash -c "head -n1 '$WORK/sse10.h' | grep -q '^HTTP/1.0 200' &&
    ! grep -qi '^transfer-encoding' '$WORK/sse10.h' && [ \"\$(grep -a '^id: ' '$WORK/sse10.out' | tr '\n' ' ')\" = 'id: 1 id: 2 ' ]"

# Beacon and metrics.
check "beacon: 204 with no body" test \
    "$("${C[@]}" -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data-binary 'hello beacon' "$B/beacon")" = 204
"${C[@]}" -D "$WORK/metrics.h" "$B/metrics" >"$WORK/metrics.out"
check "metrics: Prometheus text content type" grep -qi '^content-type: text/plain' "$WORK/metrics.h"
check "metrics: beacon count 1 and 12 bytes" bash -c \
    "grep -q '^pushbench_beacons_total 1\$' '$WORK/metrics.out' && grep -q '^pushbench_beacon_bytes_total 12\$' '$WORK/metrics.out'"
check "metrics: 67 events published" grep -q '^pushbench_events_published_total 67$' "$WORK/metrics.out"
check "metrics: gaps counted" grep -q '^pushbench_gaps_total [1-9]' "$WORK/metrics.out"
check "metrics: sse deliveries counted" grep -q '^pushbench_deliveries_total{strategy="sse"} [1-9]' "$WORK/metrics.out"
check "healthz: 200" test "$("${C[@]}" -o /dev/null -w '%{http_code}' "$B/healthz")" = 200

# Errors: the status, and a JSON body with "error" and "detail".
# err NAME STATUS CODE CURL-ARGS...
err() {
    local name="$1" want="$2" ecode="$3"; shift 3
    local got
    got=$("${C[@]}" -D "$WORK/err.h" -o "$WORK/err.body" -w '%{http_code}' "$@")
    if [ "$got" = "$want" ] && is_error "$WORK/err.body" "$ecode" &&
        grep -qi '^content-type: application/json' "$WORK/err.h"; then
        pass "error $want $name: {\"error\":\"$ecode\",\"detail\":...}"
    else
        fail "error $want $name" "got $got $(head -c 300 "$WORK/err.body")"
    fi
}
err "bad JSON" 400 bad_json -X POST -d '{"n":' "$B/topics/$T/events"
err "empty body" 400 empty_body -X POST -d '' "$B/topics/$T/events"
err "since=abc" 400 bad_since "$B/topics/$T/events?since=abc"
err "wait=-1" 400 bad_wait "$B/topics/$T/events?since=0&wait=-1"
err "limit=0" 400 bad_limit "$B/topics/$T/events?limit=0"
err "bad topic name" 400 bad_topic "$B/topics/bad%21name/events"
err "bad Last-Event-ID" 400 bad_last_event_id -H 'Last-Event-ID: x' "$B/topics/$T/sse"
err "unknown path" 404 not_found "$B/nope"
err "PUT on events" 405 method_not_allowed -X PUT -d '{}' "$B/topics/$T/events"
check "error 405 carries Allow: GET, HEAD, POST, OPTIONS" grep -qi '^allow: GET, HEAD, POST, OPTIONS' "$WORK/err.h"
head -c 5000 /dev/zero | tr '\0' 'a' | sed 's/.*/"&"/' >"$WORK/big.json"
err "body over --max-body" 413 body_too_large -X POST -H 'Content-Type: application/json' --data-binary "@$WORK/big.json" "$B/topics/$T/events"
err "plain GET on /ws" 426 websocket_required "$B/topics/$T/ws"
err "chunked body over --max-body (no Content-Length)" 413 body_too_large -X POST -H 'Transfer-Encoding: chunked' \
    --data-binary "@$WORK/big.json" "$B/topics/$T/events"
code=$("${C[@]}" -D "$WORK/pre.h" -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: http://example.test' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type' "$B/topics/$T/events")
check "CORS preflight: 204 allowing POST and Content-Type" bash -c "[ $code = 204 ] &&
    grep -qi '^access-control-allow-origin: \*' '$WORK/pre.h' &&
    grep -qi '^access-control-allow-methods:.*POST' '$WORK/pre.h' &&
    grep -qi '^access-control-allow-headers:.*content-type' '$WORK/pre.h'"

# --- Python websockets ---------------------------------------------------------

timeout -k 5 60 "$PY" "$HERE/ws_client.py" checks "$B" >"$WORK/ws.out" 2>&1 || true
cat "$WORK/ws.out"
tally "$WORK/ws.out"
grep -q '^ok   \|^FAIL ' "$WORK/ws.out" || fail "ws_client.py ran" "no results, see above"

# --- Browser -------------------------------------------------------------------

if [ "$BROWSER" -eq 1 ]; then
    if [ -x "$CHROME" ]; then
        timeout -k 5 120 "$PY" "$HERE/browser_check.py" --bin "$BIN" --chromium "$CHROME" >"$WORK/browser.out" 2>&1 || true
        cat "$WORK/browser.out"
        tally "$WORK/browser.out"
        grep -q '^ok   \|^FAIL ' "$WORK/browser.out" || fail "browser_check.py ran" "no results, see above"
    else
        fail "browser" "no chromium at $CHROME and it could not be installed (or run with --no-browser)"
    fi
fi

# --- Shutdown: WebSocket close 1001, SSE ends, held long poll answered ---------

timeout 20 "$PY" "$HERE/ws_client.py" shutdown "$B" >"$WORK/shut.out" 2>&1 &
BG_PIDS+=($!)
WSPID=$!
"${C[@]}" -N --max-time 15 "$B/topics/$T/sse" >"$WORK/shut.sse" 2>&1 &
BG_PIDS+=($!)
SSEPID=$!
"${C[@]}" -o /dev/null -w '%{http_code} %{time_total}' "$B/topics/$T/events?since=5&wait=5s" >"$WORK/shut.lp" &
BG_PIDS+=($!)
LPPID=$!
for _ in $(seq 100); do grep -q '^ready' "$WORK/shut.out" 2>/dev/null && break; sleep 0.1; done
sleep 0.3
START=$(date +%s.%N)
kill -TERM "$SERVER_PID" 2>/dev/null || true
rc=0
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "shutdown: server exits within 10 s of SIGTERM"
else
    wait "$SERVER_PID" || rc=$?
    check "shutdown: server exits with status 0 within the deadline ($(python3 -c "print(round($(date +%s.%N)-$START,2))") s)" test "$rc" = 0
fi
SERVER_PID=""
sse_rc=0; wait "$SSEPID" || sse_rc=$?
check "shutdown: SSE stream ends cleanly (curl status $sse_rc)" test "$sse_rc" = 0
wait "$LPPID" || true
read -r code secs <"$WORK/shut.lp" || true
check "shutdown: held long poll answered 204 ($secs s)" test "$code" = 204
wait "$WSPID" || true
grep -v '^ready' "$WORK/shut.out" || true
tally "$WORK/shut.out"
grep -q '^ok   \|^FAIL ' "$WORK/shut.out" || fail "ws_client.py shutdown ran" "no results"
BG_PIDS=()

summary
[ "$FAILED" -eq 0 ]
