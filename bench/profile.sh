#!/usr/bin/env bash
# CPU profiles of the fan-out path and the poll path, for the server and the load
# generator (separate processes), with perf (software cpu-clock event: this VM has no
# hardware counters; DWARF call graphs: the release profile carries line tables).
#
#   fanout-ws:  1,000 binary WebSocket subscribers, 200 events/s (200k deliveries/s)
#   fanout-sse: 1,000 SSE subscribers, 200 events/s
#   poll-wrk:   the server under wrk -t2 -c256, empty-200 short polls
#   poll-pb:    the server and the load generator, scenarios/bench-poll.toml (256 clients)
#
# Each profile covers PROFILE_S seconds of the measured window. Prints the top
# entries by self time (--no-children) for each process; full reports in bench/out/.
# Knobs: PROFILE_S [6], FREQ [499] Hz, TOP [25], CASES ["fanout-ws fanout-sse poll-wrk poll-pb"], PORT.
source "$(dirname "$0")/lib.sh"

PROFILE_S="${PROFILE_S:-6}"
FREQ="${FREQ:-499}"
TOP="${TOP:-25}"
CASES="${CASES:-fanout-ws fanout-sse poll-wrk poll-pb}"
need_perf; need_wrk; need_python; build
new_out profile

# record NAME PID: perf record on PID for PROFILE_S seconds, in the background (sets REC_PID).
record() {
    perf record -e cpu-clock -F "$FREQ" --call-graph dwarf,16384 -p "$2" -o "$OUT/$1.data" \
        -- sleep "$PROFILE_S" >"$OUT/$1.record.log" 2>&1 &
    REC_PIDS+=($!)
}
report() {
    perf report -i "$OUT/$1.data" --no-children --sort symbol --stdio --percent-limit 0.5 \
        -g none 2>/dev/null >"$OUT/$1.self.txt" || true
    perf report -i "$OUT/$1.data" --children --sort symbol --stdio --percent-limit 2 \
        -g none 2>/dev/null >"$OUT/$1.children.txt" || true
    perf report -i "$OUT/$1.data" --no-children --sort dso --stdio -g none 2>/dev/null >"$OUT/$1.dso.txt" || true
    echo "== $1: share by binary (kernel = syscalls and TCP) =="
    grep -E '^ +[0-9.]+%' "$OUT/$1.dso.txt" | head -n 5 | sed 's/ *$//'
    echo "== $1: top $TOP by self time (cpu-clock samples) =="
    grep -E '^ +[0-9.]+%' "$OUT/$1.self.txt" | head -n "$TOP" | cut -c1-150 | sed 's/ *-* *-* *$//' 
    echo
}

# pb_case NAME SCENARIO SETTINGS...: server + load generator, profile both.
pb_case() {
    local name=$1 scenario=$2; shift 2
    start_server --max-connections 19990
    "$PB" run "$scenario" --target "$BASE" --out "$OUT/$name" --duration "$((PROFILE_S + 4))s" "$@" \
        >"$OUT/$name.log" 2>&1 &
    local lg=$!
    PIDS+=("$lg")
    sleep 6   # connections up, warm-up over
    REC_PIDS=()
    record "$name-server" "$SERVER_PID"
    record "$name-loadgen" "$lg"
    wait "${REC_PIDS[@]}" || true
    wait "$lg" || true
    stop_server
}

sed -e '/^format = /d' -e 's/^strategy = "websocket"/strategy = "sse"/' \
    "$ROOT/scenarios/bench-fanout.toml" >"$OUT/bench-fanout-sse.toml"
for c in $CASES; do
    log "profiling $c"
    case $c in
        fanout-ws) pb_case "$c" "$ROOT/scenarios/bench-fanout.toml" --set group.0.clients=1000 --set publisher.rate=200 ;;
        fanout-sse) pb_case "$c" "$OUT/bench-fanout-sse.toml" --set group.0.clients=1000 --set publisher.rate=200 ;;
        poll-pb) pb_case "$c" "$ROOT/scenarios/bench-poll.toml" ;;
        poll-wrk)
            start_server
            publish_n t 5 >/dev/null
            wrk -t2 -c256 -d"$((PROFILE_S + 3))s" "$BASE/topics/t/events?since=5" >"$OUT/$c.wrk.txt" 2>&1 &
            wk=$!
            PIDS+=("$wk")
            sleep 2
            REC_PIDS=()
            record "$c-server" "$SERVER_PID"
            wait "${REC_PIDS[@]}" || true
            wait "$wk" || true
            stop_server
            ;;
    esac
done

{
    cat "$OUT/machine.txt"
    echo "perf:    cpu-clock at $FREQ Hz, DWARF call graphs, ${PROFILE_S}s per process per case"
    echo
    for f in "$OUT"/*.data; do report "$(basename "$f" .data)"; done
} | tee "$OUT/result.txt"
