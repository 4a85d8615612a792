#!/usr/bin/env bash
# Connection scale: the most concurrent idle SSE and WebSocket subscribers held by
# `pushbench serve` (one process) and the load generator (another process), both
# capped at the hard per-process descriptor limit (20,000 here). One event every 2 s
# keeps the streams honest (each must arrive, zero errors). Resident memory per
# connection, for each process, is the slope between a small and a large run:
#   (VmRSS at N_BIG - VmRSS at N_SMALL) / (N_BIG - N_SMALL), read while all are held.
# For the server, (VmRSS held - VmRSS idle after start) / N is printed as well.
#
# The load generator connects from several loopback source addresses in turn
# (scenario key source_addresses), so the ephemeral port range (~28k ports per source
# address and server port) is never the limit; the script counts the server's
# established connections per peer address while they are held.
#
# Knobs: N_BIG [hard fd limit - 100], N_SMALL [1000], STRATEGIES ["sse websocket"],
#        RAMP [20] s to open all connections, SOURCES ["127.0.0.2 127.0.0.3
#        127.0.0.4 127.0.0.5"] (empty: the kernel picks, all from 127.0.0.1), PORT.
source "$(dirname "$0")/lib.sh"

FD_CAP=$(ulimit -Hn)
ulimit -n "$FD_CAP"
N_BIG="${N_BIG:-$((FD_CAP - 100))}"
N_SMALL="${N_SMALL:-1000}"
STRATEGIES="${STRATEGIES:-sse websocket}"
RAMP="${RAMP:-20}"
SOURCES="${SOURCES-127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5}"
SOURCE_SET=()
if [ -n "$SOURCES" ]; then
    SOURCE_SET=(--set "source_addresses=[$(printf '"%s",' $SOURCES | sed 's/,$//')]")
fi
need_python; build
new_out connections

# hold STRATEGY N: appends "strategy n server_idle server_held loadgen_held open delivered expected errors opened" to $OUT/runs.tsv
hold() {
    local strategy=$1 n=$2 dir="$OUT/$1-$2"
    start_server --max-connections "$((FD_CAP - 10))"
    sleep 0.5
    local s_idle
    s_idle=$(rss_bytes "$SERVER_PID")
    sed -e "s/^strategy = \"sse\"/strategy = \"$strategy\"/" \
        -e "$([ "$strategy" = websocket ] && echo '/^read_timeout = /d' || echo 's/^x//')" \
        "$ROOT/scenarios/bench-idle.toml" >"$dir.toml"
    "$PB" run "$dir.toml" --target "$BASE" --out "$dir" --set group.0.clients="$n" \
        --set group.0.ramp_up="${RAMP}s" --set warmup="$((RAMP + 6))s" "${SOURCE_SET[@]}" >"$dir.log" 2>&1 &
    local lg=$!
    PIDS+=("$lg")
    # ramp-up RAMP s, warm-up RAMP + 6 s: read while every connection is held.
    sleep "$((RAMP + 4))"
    local s_held l_held open
    s_held=$(rss_bytes "$SERVER_PID")
    l_held=$(rss_bytes "$lg" 2>/dev/null || echo 0)
    open=$(curl -s --max-time 5 "$BASE/metrics" | awk '$1 == "pushbench_connections_open" {print $2}')
    # Established connections at the server per peer (source) address.
    ss -Htn state established "( sport = :$PORT )" | awk '{ split($4, a, ":"); n[a[1]]++ } END { for (ip in n) printf "%s=%d ", ip, n[ip] }' \
        >"$dir.peers" 2>/dev/null || true
    log "  server connections per source address: $(cat "$dir.peers")"
    wait "$lg" || true
    stop_server
    python3 - "$dir/summary.json" "$strategy" "$n" "$s_idle" "$s_held" "$l_held" "$open" >>"$OUT/runs.tsv" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
g = d["groups"][0]
print(*sys.argv[2:8], g["delivered"], g["expected"], g["errors"], g["connections_opened"])
EOF
    log "  $(tail -1 "$OUT/runs.tsv")"
}

for strategy in $STRATEGIES; do
    log "$strategy: $N_SMALL then $N_BIG idle subscribers"
    hold "$strategy" "$N_SMALL"
    hold "$strategy" "$N_BIG"
done

{
    cat "$OUT/machine.txt"
    echo "method:  $N_SMALL and $N_BIG idle subscribers per strategy, fresh server each; RSS read $((RAMP + 4)) s in (ramp-up ${RAMP}s, all connections held)"
    echo "loadgen: connects from ${SOURCES:-127.0.0.1 (chosen by the kernel)} spread evenly (source_addresses)"
    echo "server connections per source address while held:"
    for f in "$OUT"/*.peers; do echo "  $(basename "$f" .peers): $(cat "$f")"; done
    echo
    echo "runs (strategy n server_idle_B server_held_B loadgen_held_B open_at_server delivered expected errors opened):"
    echo "(open_at_server counts the publisher and the /metrics request too; opened counts 2 per WebSocket client)"
    sed 's/^/  /' "$OUT/runs.tsv"
    echo
    printf '%-10s %9s %8s %8s %22s %22s %22s\n' strategy held errors lost "server B/conn (slope)" "server B/conn (-idle)" "loadgen B/conn (slope)"
    for strategy in $STRATEGIES; do
        awk -v s="$strategy" -v small="$N_SMALL" -v big="$N_BIG" '
            $1 == s && $2 == small { ss = $4; ls = $5 }
            $1 == s && $2 == big   { si = $3; sb = $4; lb = $5; open = $6; lost = $8 - $7; err = $9 }
            END {
                if (lost < 0) lost = 0
                printf "%-10s %9s %8s %8s %22.0f %22.0f %22.0f\n", s, open, err, lost, (sb - ss) / (big - small), (sb - si) / big, (lb - ls) / (big - small)
            }' "$OUT/runs.tsv"
    done
    echo "(target: <= 8192 B per connection in each process)"
} | tee "$OUT/result.txt"
