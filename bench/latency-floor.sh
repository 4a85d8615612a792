#!/usr/bin/env bash
# Latency floor: p50 and p99 delivery latency per strategy on loopback, 100 events/s,
# 10 clients per strategy, every strategy side by side in one run
# (scenarios/bench-latency.toml), `pushbench serve` in its own process. Median over
# RUNS runs. Two latencies per strategy, as the load generator records them:
#   corrected   = receive time - intended publish time (includes publisher timer lag)
#   uncorrected = receive time - actual send time of the publish request
# and the publisher's own lag behind its schedule. Then the WebSocket group alone
# (10 clients, then 1), and, in the same rounds, the machine's floor for the same
# path: bench/loopback-floor.rs (publisher thread -> relay process -> subscriber
# threads, blocking sockets, no runtime, no protocol), built with plain rustc.
#
# Knobs: RUNS [5], DURATION [10] s, PORT.
source "$(dirname "$0")/lib.sh"

RUNS="${RUNS:-5}"
DURATION="${DURATION:-10}"
need_python; build
new_out latency-floor
FLOOR="$BENCH_DIR/.bin/loopback-floor"
rustc -O --edition 2021 -o "$FLOOR" "$BENCH_DIR/loopback-floor.rs"
FLOOR_PORT=$((PORT + 1))
start_server

# The same scenario with the WebSocket (text) group alone: the floor without the
# other 40 clients sharing the two cores.
awk '/^\[\[group\]\]/ { grp = 1; blk = $0 "\n"; next }
     grp && /^$/ { if (blk ~ /name = "websocket"\n/) printf "%s\n", blk; blk = ""; next }
     grp { blk = blk $0 "\n"; next }
     { print }
     END { if (blk ~ /name = "websocket"\n/) printf "%s", blk }' \
    "$ROOT/scenarios/bench-latency.toml" >"$OUT/bench-latency-ws-alone.toml"

for r in $(seq 1 "$RUNS"); do
    log "run $r/$RUNS"
    "$PB" run "$ROOT/scenarios/bench-latency.toml" --target "$BASE" --out "$OUT/run$r" \
        --duration "${DURATION}s" >"$OUT/run$r.log" 2>&1
    "$PB" run "$OUT/bench-latency-ws-alone.toml" --target "$BASE" --out "$OUT/alone$r" \
        --duration "${DURATION}s" >"$OUT/alone$r.log" 2>&1
    "$PB" run "$OUT/bench-latency-ws-alone.toml" --target "$BASE" --out "$OUT/one$r" \
        --duration "${DURATION}s" --set group.0.clients=1 >"$OUT/one$r.log" 2>&1
    for n in 10 1; do
        "$FLOOR" relay "$HOST:$FLOOR_PORT" "$n" &
        relay=$!
        PIDS+=("$relay")
        sleep 0.2
        "$FLOOR" client "$HOST:$FLOOR_PORT" "$n" 100 "$DURATION" >"$OUT/floor$n-$r.txt"
        wait "$relay"
    done
done

{
    cat "$OUT/machine.txt"
    echo "runs:    $RUNS x ${DURATION}s, 100 events/s, 10 clients per strategy, all strategies in one run, median of runs (us)"
    echo
    python3 - "$OUT" "$RUNS" <<'EOF'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
ds = [json.load(open(f"{out}/run{r}/summary.json")) for r in range(1, runs + 1)]
med = lambda xs: statistics.median(xs)
names = [g["name"] for g in ds[0]["groups"]]
print(f'{"strategy":18} {"p50":>8} {"p99":>8} {"p50 uncorr":>11} {"p99 uncorr":>11} {"delivered":>10} {"lost":>5} {"errors":>6}')
for n in names:
    gs = [next(g for g in d["groups"] if g["name"] == n) for d in ds]
    print(f'{n:18} {med([g["latency_us"]["p50"] for g in gs]):8.0f} {med([g["latency_us"]["p99"] for g in gs]):8.0f} '
          f'{med([g["latency_uncorrected_us"]["p50"] for g in gs]):11.0f} {med([g["latency_uncorrected_us"]["p99"] for g in gs]):11.0f} '
          f'{sum(g["delivered"] for g in gs):10} {sum(g["lost"] for g in gs):5} {sum(g["errors"] for g in gs):6}')
lag = [d["publisher"]["lag_us"] for d in ds]
print(f'publisher lag behind schedule: p50 {med([l["p50"] for l in lag]):.0f} us, p99 {med([l["p99"] for l in lag]):.0f} us')
ws = med([next(g for g in d["groups"] if g["name"] == "websocket")["latency_us"]["p50"] for d in ds])
wsu = med([next(g for g in d["groups"] if g["name"] == "websocket")["latency_uncorrected_us"]["p50"] for d in ds])
al = [json.load(open(f"{out}/alone{r}/summary.json"))["groups"][0] for r in range(1, runs + 1)]
print(f'websocket alone (10 clients, no other groups): p50 {med([g["latency_us"]["p50"] for g in al]):.0f} us, p99 {med([g["latency_us"]["p99"] for g in al]):.0f} us, '
      f'uncorrected p50 {med([g["latency_uncorrected_us"]["p50"] for g in al]):.0f} us, p99 {med([g["latency_uncorrected_us"]["p99"] for g in al]):.0f} us')
one = [json.load(open(f"{out}/one{r}/summary.json"))["groups"][0] for r in range(1, runs + 1)]
print(f'websocket alone, 1 client: p50 {med([g["latency_us"]["p50"] for g in one]):.0f} us, p99 {med([g["latency_us"]["p99"] for g in one]):.0f} us, '
      f'uncorrected p50 {med([g["latency_uncorrected_us"]["p50"] for g in one]):.0f} us')
def floor(n):
    rows = [dict(zip(*[iter(open(f"{out}/floor{n}-{r}.txt").read().split())] * 2)) for r in range(1, runs + 1)]
    return med([float(x["p50"]) for x in rows]), med([float(x["p99"]) for x in rows])
f10, f1 = floor(10), floor(1)
print(f"machine floor, same path with blocking threads (bench/loopback-floor.rs): 10 subscribers p50 {f10[0]:.0f} us, p99 {f10[1]:.0f} us; 1 subscriber p50 {f1[0]:.0f} us, p99 {f1[1]:.0f} us")
alone = med([g["latency_us"]["p50"] for g in al]); one50 = med([g["latency_us"]["p50"] for g in one])
print(f"WebSocket p50 / machine floor: 10 clients {alone / f10[0]:.2f}x, 1 client {one50 / f1[0]:.2f}x")
print(f"WebSocket p50 vs the 50 us target: corrected {ws / 50:.1f}x (beside the other groups), {alone / 50:.1f}x (alone), {one50 / 50:.1f}x (1 client); uncorrected {wsu / 50:.1f}x; the machine floor itself is {f1[0] / 50:.1f}x (1 subscriber)")
EOF
} | tee "$OUT/result.txt"
