#!/usr/bin/env bash
# Fan-out: one topic, N WebSocket (binary) or SSE subscribers, `pushbench serve` in
# its own process and the load generator in another, both on this machine. The
# publish rate is stepped up (deliveries/s = N x rate) until p99 delivery latency
# (from the intended publish time) passes 250 ms, or events are lost, or errors
# appear, or nothing was published in the window. Passing steps are then repeated,
# highest first, until one passes in most of KNEE_RUNS runs: that is the knee
# (figures are medians over its runs). When even the first step fails, it is halved.
#
# Knobs: SIZES ["1000 5000 10000"], STRATEGIES ["websocket sse"],
#        STEPS (target deliveries/s) ["50000 100000 200000 300000 400000 500000 600000 800000 1000000"],
#        DURATION [5] s per step, KNEE_RUNS [3], PORT.
source "$(dirname "$0")/lib.sh"

DURATION="${DURATION:-5}"
SIZES="${SIZES:-1000 5000 10000}"
STRATEGIES="${STRATEGIES:-websocket sse}"
STEPS="${STEPS:-50000 100000 200000 300000 400000 500000 600000 800000 1000000}"
KNEE_RUNS="${KNEE_RUNS:-3}"
KNEE_MS="${KNEE_MS:-250}"
need_python; build
new_out fanout

# one_step STRATEGY N RATE TAG: runs the load generator against a fresh server and
# appends "strategy n rate deliveries/s p99_ms lost errors loadgen_cpu server_cpu_s pass" to $OUT/steps.tsv.
one_step() {
    local strategy=$1 n=$2 rate=$3 tag=$4
    local dir="$OUT/$strategy-$n-$rate-$tag" ramp
    ramp=$(awk -v n="$n" 'BEGIN { r = n / 1000; if (r < 1) r = 1; printf "%.0fs", r }')
    start_server --max-connections 19990 --retention 100000
    local cpu0
    cpu0=$(cpu_seconds "$SERVER_PID")
    # The binary WebSocket format key is not valid for SSE: write a per-run scenario.
    sed -e "s/^strategy = \"websocket\"/strategy = \"$strategy\"/" \
        -e "$([ "$strategy" = sse ] && echo '/^format = /d' || echo 's/^x//')" \
        "$ROOT/scenarios/bench-fanout.toml" >"$dir.toml"
    "$PB" run "$dir.toml" --target "$BASE" --out "$dir" --duration "${DURATION}s" \
        --set group.0.clients="$n" --set group.0.ramp_up="$ramp" \
        --set "warmup=$(( ${ramp%s} + 3 ))s" --set publisher.rate="$rate" >"$dir.log" 2>&1 || true
    local cpu1
    cpu1=$(cpu_seconds "$SERVER_PID")
    stop_server
    if [ ! -f "$dir/summary.json" ]; then
        echo "$strategy $n $rate 0 inf 0 1 0 0 fail" >>"$OUT/steps.tsv"; return
    fi
    python3 - "$dir/summary.json" "$strategy" "$n" "$rate" "$KNEE_MS" \
        "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {print b - a}')" >>"$OUT/steps.tsv" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
strategy, n, rate, knee_ms, server_cpu = sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
g = d["groups"][0]
p99_ms = g["latency_us"]["p99"] / 1000
ok = g["expected"] > 0 and g["delivered"] >= g["expected"] and p99_ms <= knee_ms and g["lost"] == 0 and g["errors"] == 0 and not d["partial"]
print(strategy, n, rate, f'{g["delivered"] / d["duration_s"]:.0f}', f"{p99_ms:.1f}", g["lost"], g["errors"],
      f'{d["loadgen"]["cpu_s"]:.2f}', f"{server_cpu:.2f}", "pass" if ok else "fail")
EOF
    log "  $(tail -1 "$OUT/steps.tsv")"
}

verdict() { tail -1 "$OUT/steps.tsv" | awk '{print $NF}'; }
rate_for() { awk -v d="$1" -v n="$2" 'BEGIN { printf "%g", d / n }'; }

for strategy in $STRATEGIES; do
    for n in $SIZES; do
        log "$strategy x $n subscribers"
        passed=()
        for d in $STEPS; do
            one_step "$strategy" "$n" "$(rate_for "$d" "$n")" step
            [ "$(verdict)" = pass ] || break
            passed=("$d" "${passed[@]}")
        done
        if [ ${#passed[@]} -eq 0 ]; then
            # Even the first step failed: halve it, at most three times.
            d=${STEPS%% *}
            for _ in 1 2 3; do
                d=$((d / 2))
                one_step "$strategy" "$n" "$(rate_for "$d" "$n")" step
                if [ "$(verdict)" = pass ]; then passed=("$d"); break; fi
            done
        fi
        # Confirm from the highest passing step down: a step is the knee when the
        # majority of KNEE_RUNS runs pass.
        knee=none
        for d in "${passed[@]}"; do
            rate=$(rate_for "$d" "$n")
            for k in $(seq 2 "$KNEE_RUNS"); do one_step "$strategy" "$n" "$rate" "knee$k"; done
            ok=$(awk -v s="$strategy" -v n="$n" -v r="$rate" '$1==s && $2==n && $3==r && $NF=="pass"' "$OUT/steps.tsv" | wc -l)
            all=$(awk -v s="$strategy" -v n="$n" -v r="$rate" '$1==s && $2==n && $3==r' "$OUT/steps.tsv" | wc -l)
            if [ $((ok * 2)) -gt "$all" ]; then knee=$rate; break; fi
        done
        echo "$strategy $n $knee" >>"$OUT/knees.tsv"
    done
done

{
    cat "$OUT/machine.txt"
    echo "steps:   ${DURATION}s measured per step, a step passes with p99 <= ${KNEE_MS} ms, no loss, no errors; the knee is the highest step passing in most of $KNEE_RUNS runs (medians over those runs)"
    echo "loadgen: one process, all sockets from 127.0.0.1 (10,000 connections fit the ~28k ephemeral ports of one source address; connections.sh spreads over 127.0.0.2-5)"
    echo
    echo "every step (strategy subscribers rate deliveries/s p99_ms lost errors loadgen_cpu_s server_cpu_s verdict):"
    sed 's/^/  /' "$OUT/steps.tsv"
    echo
    printf '%-10s %11s %12s %16s %10s %8s %18s\n' strategy subscribers "knee rate/s" "deliveries/s" "p99 ms" "passed" "vs 500k target"
    while read -r strategy n knee; do
        if [ "$knee" = none ]; then
            printf '%-10s %11s %12s %16s %10s %8s %18s\n' "$strategy" "$n" "none" "-" "-" "-" "-"; continue
        fi
        dps=$(awk -v s="$strategy" -v n="$n" -v r="$knee" '$1==s && $2==n && $3==r {print $4}' "$OUT/steps.tsv" | median)
        p99=$(awk -v s="$strategy" -v n="$n" -v r="$knee" '$1==s && $2==n && $3==r {print $5}' "$OUT/steps.tsv" | median)
        ok=$(awk -v s="$strategy" -v n="$n" -v r="$knee" '$1==s && $2==n && $3==r && $NF=="pass"' "$OUT/steps.tsv" | wc -l)
        all=$(awk -v s="$strategy" -v n="$n" -v r="$knee" '$1==s && $2==n && $3==r' "$OUT/steps.tsv" | wc -l)
        printf '%-10s %11s %12s %16s %10s %8s %18s\n' "$strategy" "$n" "$knee" "$dps" "$p99" "$ok/$all" "$(ratio "$dps" 500000)x"
    done <"$OUT/knees.tsv"
} | tee "$OUT/result.txt"
