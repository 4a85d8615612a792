#!/usr/bin/env bash
# Measurement overhead: the load generator's CPU per delivered event, with
# `pushbench serve` in its own process. 1,000 subscribers (WebSocket binary, then
# SSE) on one topic at 100 events/s = 100,000 deliveries/s, well below the knee.
#   per event (as summary.json has it) = loadgen.cpu_s / delivered, for a SHORT and a
#       LONG run; cpu_s covers the whole process run (connect, warm-up, grace) and
#       delivered only the window, so this is an upper bound;
#   marginal = (cpu_s LONG - cpu_s SHORT) / (delivered LONG - delivered SHORT): the
#       cost of one more delivery, set-up excluded.
# The server's CPU per delivery (from /proc over the same runs) is printed beside it.
#
# Knobs: RUNS [3], SHORT [5] s, LONG [15] s, CLIENTS [1000], RATE [100], PORT.
source "$(dirname "$0")/lib.sh"

SHORT="${SHORT:-5}"
LONG="${LONG:-15}"
CLIENTS="${CLIENTS:-1000}"
RATE="${RATE:-100}"
need_python; build
new_out overhead

for strategy in websocket sse; do
    sed -e "s/^strategy = \"websocket\"/strategy = \"$strategy\"/" \
        -e "$([ "$strategy" = sse ] && echo '/^format = /d' || echo 's/^x//')" \
        "$ROOT/scenarios/bench-fanout.toml" >"$OUT/$strategy.toml"
    for r in $(seq 1 "$RUNS"); do
        for len in "$SHORT" "$LONG"; do
            dir="$OUT/$strategy-$len-$r"
            log "$strategy ${len}s run $r/$RUNS"
            start_server --max-connections 19990
            c0=$(cpu_seconds "$SERVER_PID")
            "$PB" run "$OUT/$strategy.toml" --target "$BASE" --out "$dir" --duration "${len}s" \
                --set group.0.clients="$CLIENTS" --set publisher.rate="$RATE" >"$dir.log" 2>&1
            c1=$(cpu_seconds "$SERVER_PID")
            stop_server
            echo "$strategy $len $r $(sj "$dir/summary.json" "'%s %d %s' % (d['loadgen']['cpu_s'], g['subscribers']['delivered'], g['subscribers']['lost'] + g['subscribers']['errors'])") $(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')" >>"$OUT/runs.tsv"
        done
    done
done

{
    cat "$OUT/machine.txt"
    echo "runs:    $RUNS x (${SHORT}s and ${LONG}s), $CLIENTS subscribers, $RATE events/s; medians"
    echo
    echo "runs (strategy seconds run loadgen_cpu_s delivered lost+errors server_cpu_s):"
    sed 's/^/  /' "$OUT/runs.tsv"
    echo
    python3 - "$OUT/runs.tsv" "$SHORT" "$LONG" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
short, long_ = sys.argv[2], sys.argv[3]
print(f'{"strategy":10} {"loadgen us/delivery":>20} {"loadgen marginal us":>20} {"server us/delivery":>19} {"server marginal us":>19}')
for s in ("websocket", "sse"):
    rs = [r for r in rows if r[0] == s]
    lg = statistics.median(float(r[3]) / int(r[4]) * 1e6 for r in rs if r[1] == long_ and int(r[4]))
    sv = statistics.median(float(r[6]) / int(r[4]) * 1e6 for r in rs if r[1] == long_ and int(r[4]))
    m, ms = [], []
    for run in {r[2] for r in rs}:
        a = next(r for r in rs if r[2] == run and r[1] == short)
        b = next(r for r in rs if r[2] == run and r[1] == long_)
        dd = int(b[4]) - int(a[4])
        if dd > 0:
            m.append((float(b[3]) - float(a[3])) / dd * 1e6)
            ms.append((float(b[6]) - float(a[6])) / dd * 1e6)
    print(f"{s:10} {lg:20.2f} {statistics.median(m):20.2f} {sv:19.2f} {statistics.median(ms):19.2f}")
EOF
} | tee "$OUT/result.txt"
