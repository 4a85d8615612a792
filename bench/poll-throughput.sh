#!/usr/bin/env bash
# Short-poll throughput of `pushbench serve`, and the load generator's own poll rate
# as a ratio to wrk's and oha's against the same endpoints, side by side in one run.
#
#   paths:  200  GET /topics/t/events?since=0        (5 events in the answer)
#           200e GET /topics/t/events?since=5        (empty answer, what a caught-up poller gets)
#           304  GET /topics/t/events?since=5 + If-None-Match (conditional, nothing new)
#   tools:  wrk (-t2 -c$CONNS --latency), oha (-c$CONNS), pushbench run scenarios/bench-poll.toml
#           (CONNS clients polling back to back like wrk's connections: fixed-delay, interval 0s,
#           cursor=since; conditional=true for the 304 side; and 4 x CONNS clients on the
#           empty-200 side, to show whether more connections would go faster).
#
# Each round runs every (tool, path) once, in the same order; the median over
# RUNS rounds is printed. Knobs: RUNS [3], DURATION [5] s, CONNS [256], PORT.
source "$(dirname "$0")/lib.sh"

DURATION="${DURATION:-5}"
CONNS="${CONNS:-256}"
need_wrk; need_oha; need_python; build
new_out poll-throughput
start_server --max-connections 4000

publish_n t 5 >/dev/null
U200="$BASE/topics/t/events?since=0"
U200E="$BASE/topics/t/events?since=5"
ETAG=$(curl -s -D - -o /dev/null "$U200E" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$U200E")" = 304 ] \
    || { log "If-None-Match $ETAG did not give a 304"; exit 1; }
log "200 answer: $(curl -s "$U200" | wc -c) bytes body; 304 with If-None-Match: $ETAG"

# Every measurement appends one line to $OUT/<name>.tsv:
#   requests/s  p99_us  errors  client_cpu_us_per_request  server_cpu_us_per_request
# Client CPU comes from bash's `time` (user + sys of the tool), server CPU from /proc.
TIMEFORMAT='%U %S'
S0=0
server_cpu_start() { S0=$(cpu_seconds "$SERVER_PID"); }
cpu_per_req() { # cpu_seconds requests -> us per request
    awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", c / n * 1e6; else print 0 }'
}
finish_line() { # name "rps p99 errors" client_cpu_s requests
    local s1
    s1=$(cpu_seconds "$SERVER_PID")
    echo "$2 $(cpu_per_req "$3" "$4") $(cpu_per_req "$(awk -v a="$S0" -v b="$s1" 'BEGIN {print b - a}')" "$4")" >>"$OUT/$1.tsv"
}
run_wrk() { # name url [header]
    local name=$1 url=$2 f="$OUT/$1.$r.txt" h=() line cpu
    [ $# -ge 3 ] && h=(-H "$3")
    server_cpu_start
    { time wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "${h[@]}" "$url" >"$f" 2>&1; } 2>"$f.cpu"
    line=$(python3 "$BENCH_DIR/parse_wrk.py" <"$f")
    cpu=$(awk '{print $1 + $2}' "$f.cpu")
    finish_line "$name" "$line" "$cpu" "$(awk -v r="${line%% *}" -v d="$DURATION" 'BEGIN {print r * d}')"
}
run_oha() { # name url [header]
    local name=$1 url=$2 f="$OUT/$1.$r.json" h=() line cpu
    [ $# -ge 3 ] && h=(-H "$3")
    server_cpu_start
    { time oha -z "${DURATION}s" -c "$CONNS" --no-tui --output-format json "${h[@]}" "$url" >"$f" 2>/dev/null; } 2>"$f.cpu"
    line=$(python3 - "$f" <<'EOF2'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
codes = d.get("statusCodeDistribution", {})
# Requests cut off by the end of -z are not failures of the server.
bad = sum(v for k, v in codes.items() if k not in ("200", "304")) + sum(v for k, v in d.get("errorDistribution", {}).items() if k != "aborted due to deadline")
print(f'{s["requestsPerSec"]:.0f}', f'{d["latencyPercentiles"]["p99"] * 1e6:.0f}', bad)
EOF2
)
    cpu=$(awk '{print $1 + $2}' "$f.cpu")
    finish_line "$name" "$line" "$cpu" "$(awk -v r="${line%% *}" -v d="$DURATION" 'BEGIN {print r * d}')"
}
run_pb() { # name conditional [clients]
    local name=$1 dir="$OUT/$1.$r" line total clients=${3:-$CONNS}
    server_cpu_start
    "$PB" run "$ROOT/scenarios/bench-poll.toml" --target "$BASE" --out "$dir" \
        --duration "${DURATION}s" --set group.poll.clients="$clients" \
        --set group.poll.conditional="$2" >"$dir.log" 2>&1
    # `requests` counts from the window start to the end of the grace period (1 s);
    # clients poll from the start of the 2 s warm-up at the same rate, so the whole
    # run's requests (for CPU per request) are requests x (2 + D + 1) / (D + 1).
    line=$(sj "$dir/summary.json" "'%.0f 0 %d' % (g['poll']['requests'] / (d['duration_s'] + 1.0), g['poll']['errors'])")
    total=$(sj "$dir/summary.json" "g['poll']['requests'] * (d['duration_s'] + 3.0) / (d['duration_s'] + 1.0)")
    finish_line "$name" "$line" "$(sj "$dir/summary.json" "d['loadgen']['cpu_s']")" "$total"
}

log "warm-up (2 s of wrk)"
wrk -t2 -c"$CONNS" -d2s "$U200" >/dev/null 2>&1
for r in $(seq 1 "$RUNS"); do
    log "round $r/$RUNS"
    run_wrk wrk-200 "$U200"
    run_oha oha-200 "$U200"
    run_wrk wrk-200e "$U200E"
    run_oha oha-200e "$U200E"
    run_pb pushbench-200e false
    run_pb pushbench-200e-x4 false $((CONNS * 4))
    run_wrk wrk-304 "$U200E" "If-None-Match: $ETAG"
    run_oha oha-304 "$U200E" "If-None-Match: $ETAG"
    run_pb pushbench-304 true
done

med() { cut -d' ' -f"$2" "$OUT/$1.tsv" | median; }
{
    cat "$OUT/machine.txt"
    echo "runs:    $RUNS x ${DURATION}s per (tool, path), $CONNS connections each, median reported"
    echo
    printf '%-16s %12s %10s %8s %14s %14s   %s\n' "tool/path" "requests/s" "p99 us" "errors" "tool us/req" "server us/req" "(per-run requests/s)"
    for n in wrk-200 oha-200 wrk-200e oha-200e pushbench-200e pushbench-200e-x4 wrk-304 oha-304 pushbench-304; do
        p99=$(med $n 2); [ "${n#pushbench}" != "$n" ] && p99=-
        printf '%-16s %12s %10s %8s %14s %14s   %s\n' "$n" "$(med $n 1)" "$p99" \
            "$(awk '{s+=$3} END {print s+0}' "$OUT/$n.tsv")" "$(med $n 4)" "$(med $n 5)" "$(cut -d' ' -f1 "$OUT/$n.tsv" | paste -sd' ')"
    done
    echo "(pushbench-200e-x4: the load generator with 4 x $CONNS clients, for comparison with its $CONNS)"
    echo "(pushbench reports delivery latency, not request latency: no p99 column; tool us/req = the client's own CPU per request)"
    echo
    echo "ratios (median requests/s):"
    echo "  pushbench / wrk, empty 200: $(ratio "$(med pushbench-200e 1)" "$(med wrk-200e 1)")   pushbench / oha, empty 200: $(ratio "$(med pushbench-200e 1)" "$(med oha-200e 1)")"
    echo "  pushbench / wrk, 304:       $(ratio "$(med pushbench-304 1)" "$(med wrk-304 1)")   pushbench / oha, 304:       $(ratio "$(med pushbench-304 1)" "$(med oha-304 1)")"
    echo "  pushbench x4 clients / wrk, empty 200: $(ratio "$(med pushbench-200e-x4 1)" "$(med wrk-200e 1)")"
    echo "  oha / wrk, 200:             $(ratio "$(med oha-200 1)" "$(med wrk-200 1)")   wrk 304 / wrk 200:          $(ratio "$(med wrk-304 1)" "$(med wrk-200 1)")"
} | tee "$OUT/result.txt"
