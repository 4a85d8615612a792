#!/usr/bin/env bash
# pushbench serve against Nchan (nginx 1.22 + libnginx-mod-nchan 1.3.6, Debian), side
# by side on this machine under the same load from the same load generator. Each
# server runs in its own processes (pushbench: one process, 2 tokio worker threads;
# nginx: a master and 2 workers, bench/nchan/nginx.conf.in), the runs alternate
# servers (pushbench, nchan, pushbench, nchan, ...) and every figure is a median of
# the runs with the ratio pushbench / nchan.
#
#   latency  SSE and WebSocket (text), 10 clients each, 100 events/s of 256 bytes
#            (scenarios/bench-latency.toml less its poll groups): p50/p99 corrected
#            and uncorrected, bytes on the wire per event, lost/dup/reordered/errors.
#   fanout   one topic, N subscribers (SSE, WebSocket text), the publish rate stepped
#            as bench/fanout.sh does, each server climbing until a step fails twice in
#            a row (a step fails when p99 > KNEE_MS, anything is
#            lost or an error appears, or the server acknowledged fewer than 95% of
#            the window's publishes); the knee is the highest step passing in most
#            of KNEE_RUNS runs. Server CPU per delivery is read from /proc during the
#            measured window (nginx: master + workers), at the first step and at the
#            highest step both pass.
#   idle     resident memory per idle SSE / WebSocket connection at each of
#            IDLE_SIZES connections (scenarios/bench-idle.toml, one event every 2 s):
#            (held - after start) / N, summed over the server's processes, as RSS and
#            as PSS (shared pages split between the processes that map them, so Nchan's
#            shared memory zone is counted once).
#
# Nchan is measured through the scenario's [target] table (bench/nchan/target.toml,
# appended for the Nchan runs): it relays the published body verbatim (`data:` line,
# WebSocket text frame), which the load generator's clients accept.
#
# Knobs: PARTS ["latency fanout idle"], RUNS [3] latency runs per server, DURATION [10] s,
#        FANOUT_SIZES ["1000"] (10000 fits the descriptor cap; adds ~8 min),
#        FANOUT_STRATEGIES ["websocket sse"],
#        STEPS (target deliveries/s) ["25000 50000 100000 200000 300000 400000 500000 600000 800000"],
#        STEP_DURATION [5] s, KNEE_RUNS [3], KNEE_MS [250],
#        IDLE_SIZES ["1000 5000"], IDLE_STRATEGIES ["sse websocket"],
#        PORT [18540] (pushbench serve), NCHAN_PORT [18550], NCHAN_BUFFER [1000] messages
#        kept per channel, NCHAN_SHM [256M]; REPORT_ONLY=bench/out/vs-nchan-... prints the
#        result of an earlier run again (no measurement).
PORT="${PORT:-18540}"
source "$(dirname "$0")/lib.sh"

PARTS="${PARTS:-latency fanout idle}"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
FANOUT_SIZES="${FANOUT_SIZES:-1000}"
FANOUT_STRATEGIES="${FANOUT_STRATEGIES:-websocket sse}"
STEPS="${STEPS:-25000 50000 100000 200000 300000 400000 500000 600000 800000}"
STEP_DURATION="${STEP_DURATION:-5}"
KNEE_RUNS="${KNEE_RUNS:-3}"
KNEE_MS="${KNEE_MS:-250}"
IDLE_SIZES="${IDLE_SIZES:-1000 5000}"
IDLE_STRATEGIES="${IDLE_STRATEGIES:-sse websocket}"
NCHAN_PORT="${NCHAN_PORT:-18550}"
NCHAN_BASE="http://$HOST:$NCHAN_PORT"
NCHAN_BUFFER="${NCHAN_BUFFER:-1000}"
NCHAN_SHM="${NCHAN_SHM:-256M}"
SERVERS="pb nchan"

FD_CAP=$(ulimit -Hn)
ulimit -n "$FD_CAP"

run_part() { [ -z "${REPORT_ONLY:-}" ] && [[ " $PARTS " == *" $1 "* ]]; }

need_python
if [ -n "${REPORT_ONLY:-}" ]; then
    OUT=$(cd "$REPORT_ONLY" && pwd)
elif [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || ! command -v nginx >/dev/null; then
    log "installing nginx and libnginx-mod-nchan (Debian)"
    apt_install nginx libnginx-mod-nchan
    # The package's own service is not used (and may not start in a container).
fi
if [ -z "${REPORT_ONLY:-}" ]; then
    build
    new_out vs-nchan
    {
        echo "nchan:   $(dpkg-query -W -f='${Package} ${Version}' libnginx-mod-nchan 2>/dev/null), $(nginx -v 2>&1 | sed 's/^nginx version: //')"
        echo "command: PARTS=\"$PARTS\" RUNS=$RUNS DURATION=$DURATION FANOUT_SIZES=\"$FANOUT_SIZES\" FANOUT_STRATEGIES=\"$FANOUT_STRATEGIES\" STEPS=\"$STEPS\" STEP_DURATION=$STEP_DURATION KNEE_RUNS=$KNEE_RUNS KNEE_MS=$KNEE_MS IDLE_SIZES=\"$IDLE_SIZES\" IDLE_STRATEGIES=\"$IDLE_STRATEGIES\" bench/vs-nchan.sh"
    } >>"$OUT/machine.txt"

    # The nginx configuration of every Nchan run.
    mkdir -p "$OUT/nginx-tmp"
    sed -e "s#@OUT@#$OUT#g" -e "s/@NOFILE@/$((FD_CAP - 10))/" -e "s/@WORKER_CONNECTIONS@/$((FD_CAP - 100))/" \
        -e "s/@SHM@/$NCHAN_SHM/" -e "s/@HOST@/$HOST/" -e "s/@PORT@/$NCHAN_PORT/" -e "s/@BUFFER@/$NCHAN_BUFFER/g" \
        "$BENCH_DIR/nchan/nginx.conf.in" >"$OUT/nginx.conf"
    nginx -t -q -e "$OUT/nginx-error.log" -c "$OUT/nginx.conf" -p "$OUT/" || { log "nginx -t failed: $OUT/nginx.conf"; exit 1; }
fi

# --- the two servers ---------------------------------------------------------------

declare -A SRV_PID BASE_OF=([pb]="$BASE" [nchan]="$NCHAN_BASE")

# srv_start SERVER [pushbench serve flags...]: waits for /healthz.
srv_start() {
    local srv=$1
    shift
    if [ "$srv" = pb ]; then
        start_server "$@"
        SRV_PID[pb]=$SERVER_PID
        return
    fi
    if curl -s -o /dev/null --max-time 1 "$NCHAN_BASE/healthz"; then
        log "something already listens on $NCHAN_BASE: set NCHAN_PORT=... to a free port"; exit 1
    fi
    nginx -e "$OUT/nginx-error.log" -c "$OUT/nginx.conf" -p "$OUT/" >>"$OUT/nginx.log" 2>&1 &
    SRV_PID[nchan]=$!
    PIDS+=("${SRV_PID[nchan]}")
    wait_healthy "$NCHAN_BASE" "nginx did not come up; see $OUT/nginx-error.log"
}

srv_stop() {
    local srv=$1 pid=${SRV_PID[$1]}
    [ -n "$pid" ] || return 0
    if [ "$srv" = pb ]; then stop_server; else kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    SRV_PID[$srv]=
}

# The server's processes: pushbench's one, or nginx's master and its workers.
srv_pids() {
    local pid=${SRV_PID[$1]}
    echo "$pid"
    if [ "$1" = nchan ]; then pgrep -P "$pid" || true; fi
}

# CPU seconds (user + sys) summed over the server's processes.
srv_cpu() {
    local p sum=0
    for p in $(srv_pids "$1"); do
        sum=$(awk -v s="$sum" -v c="$(cpu_seconds "$p" 2>/dev/null || echo 0)" 'BEGIN {print s + c}')
    done
    echo "$sum"
}

# "rss pss anon" in bytes, summed over the server's processes (smaps_rollup).
srv_mem() {
    local p
    for p in $(srv_pids "$1"); do cat "/proc/$p/smaps_rollup" 2>/dev/null || true; done |
        awk '$1 == "Rss:" {r += $2} $1 == "Pss:" {p += $2} $1 == "Anonymous:" {a += $2}
             END {printf "%.0f %.0f %.0f\n", r * 1024, p * 1024, a * 1024}'
}

# scenario FILE SERVER DEST: the same load for either server (Nchan gets [target]).
scenario() {
    cp "$1" "$3"
    if [ "$2" = nchan ]; then cat "$BENCH_DIR/nchan/target.toml" >>"$3"; fi
}

# load SERVER TOML DIR WARMUP_S DURATION_S [run flags...]: one load-generator run
# against the running server. Reads the server's CPU at the start and the end of
# the measured window and its memory in the middle; writes "cpu_window_s rss pss anon"
# (memory while loaded) to DIR.srv.
load() {
    local srv=$1 toml=$2 dir=$3 warm=$4 dur=$5
    shift 5
    "$PB" run "$toml" --target "${BASE_OF[$srv]}" --out "$dir" --duration "${dur}s" \
        --set "warmup=${warm}s" "$@" >"$dir.log" 2>&1 &
    local lg=$!
    PIDS+=("$lg")
    # The run's clock starts 0.2 s after launch; the window after the warm-up.
    sleep "$(awk -v w="$warm" 'BEGIN {print w + 0.25}')"
    local c0 c1 mem
    c0=$(srv_cpu "$srv")
    sleep "$(awk -v d="$dur" 'BEGIN {print d / 2}')"
    mem=$(srv_mem "$srv")
    sleep "$(awk -v d="$dur" 'BEGIN {print d / 2}')"
    c1=$(srv_cpu "$srv")
    wait "$lg" || true
    echo "$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}') $mem" >"$dir.srv"
}

# --- latency floor -----------------------------------------------------------------

if run_part latency; then
    # bench-latency.toml without its poll / long-poll / binary groups: what Nchan serves.
    awk '/^\[\[group\]\]/ { grp = 1; blk = $0 "\n"; next }
         grp && /^$/ { if (blk ~ /name = "(sse|websocket)"\n/) printf "%s\n", blk; blk = ""; next }
         grp { blk = blk $0 "\n"; next }
         { print }
         END { if (blk ~ /name = "(sse|websocket)"\n/) printf "%s", blk }' \
        "$ROOT/scenarios/bench-latency.toml" >"$OUT/latency.toml"
    for srv in $SERVERS; do scenario "$OUT/latency.toml" "$srv" "$OUT/latency-$srv.toml"; done
    srv_start pb
    srv_start nchan
    for r in $(seq 1 "$RUNS"); do
        for srv in $SERVERS; do
            log "latency: run $r/$RUNS, $srv"
            load "$srv" "$OUT/latency-$srv.toml" "$OUT/latency-$srv-$r" 2 "$DURATION"
        done
    done
    srv_stop pb
    srv_stop nchan
fi

# --- fan-out -----------------------------------------------------------------------

# one_step SERVER STRATEGY N RATE TAG: a fresh server, one run; appends "server strategy
# n rate deliveries/s p99_ms lost dup reord errors loadgen_cpu_s server_cpu_window_s
# cpu_us_per_delivery bytes_per_event publisher_lag_p99_ms verdict" to $OUT/steps.tsv (the
# publisher's lag behind its schedule grows when the server stops reading its
# pipelined publishes).
one_step() {
    local srv=$1 strategy=$2 n=$3 rate=$4 tag=$5
    local dir="$OUT/fanout-$srv-$strategy-$n-$rate-$tag" ramp
    ramp=$(awk -v n="$n" 'BEGIN { r = n / 1000; if (r < 1) r = 1; printf "%.0f", r }')
    srv_start "$srv" --max-connections $((FD_CAP - 10)) --retention 100000
    # Text frames for WebSocket (Nchan sends text); SSE has no format key.
    sed -e "s/^strategy = \"websocket\"/strategy = \"$strategy\"/" \
        -e "$([ "$strategy" = sse ] && echo '/^format = /d' || echo 's/^format = .*/format = "text"/')" \
        "$ROOT/scenarios/bench-fanout.toml" >"$dir.base.toml"
    scenario "$dir.base.toml" "$srv" "$dir.toml"
    load "$srv" "$dir.toml" "$dir" $((ramp + 3)) "$STEP_DURATION" \
        --set group.0.clients="$n" --set group.0.ramp_up="${ramp}s" --set publisher.rate="$rate"
    srv_stop "$srv"
    if [ ! -f "$dir/summary.json" ]; then
        echo "$srv $strategy $n $rate 0 inf 0 0 0 1 0 0 0 0 0 fail" >>"$OUT/steps.tsv"; return
    fi
    python3 - "$dir/summary.json" "$dir.srv" "$srv" "$strategy" "$n" "$rate" "$KNEE_MS" >>"$OUT/steps.tsv" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
cpu = float(open(sys.argv[2]).read().split()[0])
srv, strategy, n, rate, knee_ms = sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6], float(sys.argv[7])
g = d["groups"][0]
p99_ms = g["latency_us"]["p99"] / 1000
# The server must also have acknowledged the window's publishes (a server that
# stalls its publish replies otherwise passes with a trickle of events).
scheduled = float(rate) * d["duration_s"]
ok = (g["expected"] > 0 and g["delivered"] >= g["expected"] and p99_ms <= knee_ms and g["lost"] == 0
      and d["publisher"]["published"] >= int(0.95 * scheduled)
      and g["duplicates"] == 0 and g["reordered"] == 0 and g["errors"] == 0 and not d["partial"])
per = cpu * 1e6 / g["delivered"] if g["delivered"] else 0
bpe = g["bytes_down"] / g["delivered"] if g["delivered"] else 0
print(srv, strategy, n, rate, f'{g["delivered"] / d["duration_s"]:.0f}', f"{p99_ms:.1f}", g["lost"], g["duplicates"],
      g["reordered"], g["errors"], f'{d["loadgen"]["cpu_s"]:.2f}', f"{cpu:.2f}", f"{per:.3f}", f"{bpe:.1f}",
      f'{d["publisher"]["lag_us"]["p99"] / 1000:.1f}',
      "pass" if ok else "fail")
EOF
    log "  $(tail -1 "$OUT/steps.tsv")"
}

verdict() { tail -1 "$OUT/steps.tsv" | awk '{print $NF}'; }
# try SERVER STRATEGY N RATE: one step, run again once if it fails (one noisy run on
# this shared machine must not end a server's climb); the verdict is the last run's.
try() {
    one_step "$@" step
    [ "$(verdict)" = pass ] || one_step "$@" retry
}
rate_for() { awk -v d="$1" -v n="$2" 'BEGIN { printf "%g", d / n }'; }
passes() { awk -v v="$1" -v s="$2" -v t="$3" -v n="$4" -v r="$5" '$1==v && $2==t && $3==n && $4==r && (s == "all" || $NF==s)' "$OUT/steps.tsv" | wc -l; }

if run_part fanout; then
    for strategy in $FANOUT_STRATEGIES; do
        for n in $FANOUT_SIZES; do
            log "fan-out: $strategy x $n subscribers"
            declare -A passed=([pb]="" [nchan]="")
            active="$SERVERS"
            # Step up, both servers at each step, until each has failed once.
            for d in $STEPS; do
                [ -n "$active" ] || break
                still=""
                for srv in $active; do
                    try "$srv" "$strategy" "$n" "$(rate_for "$d" "$n")"
                    if [ "$(verdict)" = pass ]; then passed[$srv]="$d ${passed[$srv]}"; still="$still $srv"; fi
                done
                active=$still
            done
            # A server that failed even the first step: halve it, at most three times.
            for srv in $SERVERS; do
                if [ -z "${passed[$srv]}" ]; then
                    d=${STEPS%% *}
                    for _ in 1 2 3; do
                        d=$((d / 2))
                        try "$srv" "$strategy" "$n" "$(rate_for "$d" "$n")"
                        if [ "$(verdict)" = pass ]; then passed[$srv]="$d"; break; fi
                    done
                fi
            done
            # Confirm from the highest passing step down, the servers alternating: a
            # step is the knee when most of KNEE_RUNS runs pass.
            declare -A knee=([pb]=none [nchan]=none) left=([pb]="${passed[pb]}" [nchan]="${passed[nchan]}")
            undecided=""
            for srv in $SERVERS; do [ -n "${left[$srv]// /}" ] && undecided="$undecided $srv"; done
            while [ -n "${undecided// /}" ]; do
                for k in $(seq 2 "$KNEE_RUNS"); do
                    for srv in $undecided; do
                        # shellcheck disable=SC2086 # the list of passing steps, split on purpose
                        set -- ${left[$srv]}
                        one_step "$srv" "$strategy" "$n" "$(rate_for "$1" "$n")" "knee$k"
                    done
                done
                next=""
                for srv in $undecided; do
                    # shellcheck disable=SC2086 # as above
                    set -- ${left[$srv]}
                    rate=$(rate_for "$1" "$n")
                    ok=$(passes "$srv" pass "$strategy" "$n" "$rate")
                    all=$(passes "$srv" all "$strategy" "$n" "$rate")
                    shift
                    if [ $((ok * 2)) -gt "$all" ]; then
                        knee[$srv]=$rate
                    elif [ $# -gt 0 ]; then
                        left[$srv]="$*"; next="$next $srv"
                    fi
                done
                undecided=$next
            done
            for srv in $SERVERS; do echo "$srv $strategy $n ${knee[$srv]}" >>"$OUT/knees.tsv"; done
        done
    done
fi

# --- idle connections --------------------------------------------------------------

if run_part idle; then
    for strategy in $IDLE_STRATEGIES; do
        sed -e "s/^strategy = \"sse\"/strategy = \"$strategy\"/" \
            -e "$([ "$strategy" = websocket ] && echo '/^read_timeout = /d' || echo 's/^x//')" \
            "$ROOT/scenarios/bench-idle.toml" >"$OUT/idle-$strategy.toml"
        for n in $IDLE_SIZES; do
            ramp=$(awk -v n="$n" 'BEGIN { r = n / 1000; if (r < 2) r = 2; printf "%.0f", r }')
            for srv in $SERVERS; do
                log "idle: $strategy x $n, $srv"
                dir="$OUT/idle-$srv-$strategy-$n"
                scenario "$OUT/idle-$strategy.toml" "$srv" "$dir.toml"
                srv_start "$srv" --max-connections $((FD_CAP - 10))
                sleep 0.5
                base_mem=$(srv_mem "$srv")
                load "$srv" "$dir.toml" "$dir" $((ramp + 3)) 4 \
                    --set group.0.clients="$n" --set group.0.ramp_up="${ramp}s"
                srv_stop "$srv"
                echo "$srv $strategy $n $base_mem $(cut -d' ' -f2- "$dir.srv")" >>"$OUT/idle.tsv"
                log "  $(tail -1 "$OUT/idle.tsv")"
            done
        done
    done
fi

# --- result ------------------------------------------------------------------------

{
    cat "$OUT/machine.txt"
    echo "servers: pb = pushbench serve (1 process, 2 tokio worker threads), nchan = nginx master + 2 workers ($OUT/nginx.conf)"
    echo "ratios:  pushbench / nchan (latency, CPU, bytes, memory: < 1 is pushbench better; deliveries/s: > 1 is pushbench better)"
    echo
    python3 - "$OUT" "$RUNS" "$PARTS" "$KNEE_MS" "$KNEE_RUNS" <<'EOF'
import json, os, statistics, sys
out, runs, parts, knee_ms, knee_runs = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4], sys.argv[5]
med = statistics.median
def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"
bad = {"pb": [0, 0, 0, 0], "nchan": [0, 0, 0, 0]}
def check(srv, g):
    for i, k in enumerate(("lost", "duplicates", "reordered", "errors")):
        bad[srv][i] += g[k]

if "latency" in parts:
    print(f"latency floor: 10 clients per strategy, 100 events/s of 256 B, median of {runs} runs per server (us)")
    print(f'{"strategy":10} {"server":6} {"p50":>7} {"p99":>7} {"p50 unc":>8} {"p99 unc":>8} {"B/event":>8} {"delivered":>10} {"lost":>5} {"dup":>4} {"reord":>5} {"err":>4}')
    rows = {}
    for strat in ("sse", "websocket"):
        for srv in ("pb", "nchan"):
            gs = []
            for r in range(1, runs + 1):
                p = f"{out}/latency-{srv}-{r}/summary.json"
                if os.path.exists(p):
                    gs += [g for g in json.load(open(p))["groups"] if g["name"] == strat]
            if not gs:
                continue
            for g in gs:
                check(srv, g)
            v = dict(p50=med([g["latency_us"]["p50"] for g in gs]), p99=med([g["latency_us"]["p99"] for g in gs]),
                     u50=med([g["latency_uncorrected_us"]["p50"] for g in gs]), u99=med([g["latency_uncorrected_us"]["p99"] for g in gs]),
                     bpe=med([g["bytes_down"] / g["delivered"] for g in gs if g["delivered"]] or [0]))
            rows[strat, srv] = v
            print(f'{strat:10} {srv:6} {v["p50"]:7.0f} {v["p99"]:7.0f} {v["u50"]:8.0f} {v["u99"]:8.0f} {v["bpe"]:8.1f} '
                  f'{sum(g["delivered"] for g in gs):10} {sum(g["lost"] for g in gs):5} {sum(g["duplicates"] for g in gs):4} '
                  f'{sum(g["reordered"] for g in gs):5} {sum(g["errors"] for g in gs):4}')
        if (strat, "pb") in rows and (strat, "nchan") in rows:
            a, b = rows[strat, "pb"], rows[strat, "nchan"]
            print(f'{strat:10} {"ratio":6} {ratio(a["p50"], b["p50"]):>7} {ratio(a["p99"], b["p99"]):>7} {ratio(a["u50"], b["u50"]):>8} '
                  f'{ratio(a["u99"], b["u99"]):>8} {ratio(a["bpe"], b["bpe"]):>8}')
    # Server CPU in the measured window per delivery (both groups): at 2,000
    # deliveries/s mostly the cost of one wake-up per event per connection.
    cpu = {}
    for srv in ("pb", "nchan"):
        xs = []
        for r in range(1, runs + 1):
            if os.path.exists(f"{out}/latency-{srv}-{r}.srv") and os.path.exists(f"{out}/latency-{srv}-{r}/summary.json"):
                c = float(open(f"{out}/latency-{srv}-{r}.srv").read().split()[0])
                n = sum(g["delivered"] for g in json.load(open(f"{out}/latency-{srv}-{r}/summary.json"))["groups"])
                if n:
                    xs.append(c * 1e6 / n)
        cpu[srv] = xs
    if cpu["pb"] and cpu["nchan"]:
        print(f'server CPU per delivery in the measured window (us, median): pb {med(cpu["pb"]):.1f}, nchan {med(cpu["nchan"]):.1f}, ratio {ratio(med(cpu["pb"]), med(cpu["nchan"]))}')
    print()

if "fanout" in parts and os.path.exists(f"{out}/steps.tsv"):
    steps = [l.split() for l in open(f"{out}/steps.tsv")]
    print("fan-out, every step (server strategy subscribers rate deliveries/s p99_ms lost dup reord errors loadgen_cpu_s server_cpu_window_s server_us/delivery bytes/event pub_lag_p99_ms verdict):")
    for s in steps:
        print("  " + " ".join(s))
    print()
    print(f"fan-out knee: p99 <= {knee_ms} ms, nothing lost, duplicated or reordered, no errors, in most of {knee_runs} runs (medians over the knee's runs)")
    print(f'{"strategy":10} {"subs":>6} {"server":6} {"knee rate/s":>11} {"deliveries/s":>13} {"p99 ms":>7} {"passed":>6} {"pub lag p99 ms":>14}')
    knees = {}
    for l in open(f"{out}/knees.tsv"):
        srv, strat, n, k = l.split()
        knees[srv, strat, n] = k
    done = set()
    for (srv, strat, n), k in knees.items():
        if (strat, n) in done:
            continue
        done.add((strat, n))
        dps = {}
        for s in ("pb", "nchan"):
            k = knees.get((s, strat, n), "none")
            at = [x for x in steps if x[0] == s and x[1] == strat and x[2] == n and x[3] == k]
            if k == "none" or not at:
                print(f'{strat:10} {n:>6} {s:6} {"none":>11}')
                continue
            dps[s] = med([float(x[4]) for x in at])
            print(f'{strat:10} {n:>6} {s:6} {k:>11} {dps[s]:13.0f} {med([float(x[5]) for x in at]):7.1f} '
                  f'{sum(x[-1] == "pass" for x in at)}/{len(at)} {med([float(x[14]) for x in at]):11.1f}')
        if len(dps) == 2:
            print(f'{strat:10} {n:>6} {"ratio":6} {"":>11} {ratio(dps["pb"], dps["nchan"]):>13}')
        # CPU per delivery and bytes per event at the same offered load: the first
        # step (both servers always run it) and the highest step both passed in most
        # runs; medians over every run at that rate (verdicts shown).
        def runs_at(s, rate, verdict=None):
            return [x for x in steps if x[0] == s and x[1] == strat and x[2] == n and float(x[3]) == rate
                    and (verdict is None or x[-1] == verdict)]
        rates = sorted({float(x[3]) for x in steps if x[1] == strat and x[2] == n
                        and all(runs_at(s, float(x[3])) for s in ("pb", "nchan"))})
        most = [r for r in rates if all(2 * len(runs_at(s, r, "pass")) > len(runs_at(s, r)) for s in ("pb", "nchan"))]
        for common in sorted({r for r in (rates[:1] + most[-1:])}):
            v = {}
            for s in ("pb", "nchan"):
                at = runs_at(s, common)
                v[s] = (med([float(x[12]) for x in at]), med([float(x[13]) for x in at]), med([float(x[10]) for x in at]),
                        f'{sum(x[-1] == "pass" for x in at)}/{len(at)}')
            print(f'{strat:10} {n:>6} at {common:g} events/s ({common * int(n):.0f} deliveries/s; passed pb {v["pb"][3]}, nchan {v["nchan"][3]}): '
                  f'server CPU per delivery pb {v["pb"][0]:.2f} us, nchan {v["nchan"][0]:.2f} us, ratio {ratio(v["pb"][0], v["nchan"][0])}; '
                  f'bytes/event pb {v["pb"][1]:.1f}, nchan {v["nchan"][1]:.1f}, ratio {ratio(v["pb"][1], v["nchan"][1])}; '
                  f'load generator CPU s pb {v["pb"][2]:.2f}, nchan {v["nchan"][2]:.2f}')
    # Integrity over the passing steps only (a failing step is where loss defines the knee).
    for x in steps:
        if x[-1] == "pass":
            for i in range(4):
                bad[x[0]][i] += int(x[6 + i])
    print()

if "idle" in parts and os.path.exists(f"{out}/idle.tsv"):
    print("idle connections: server memory summed over its processes (pushbench: 1; nginx: master + 2 workers), KiB per connection")
    print("  = (held - after start) / N; PSS splits shared pages (Nchan's shared memory zone) between the processes mapping them")
    print(f'{"strategy":10} {"conns":>6} {"server":6} {"RSS start MiB":>13} {"RSS held MiB":>12} {"RSS KiB/conn":>12} {"PSS KiB/conn":>12} {"anon KiB/conn":>13} {"delivered":>9} {"lost":>5} {"err":>4}')
    rows = [l.split() for l in open(f"{out}/idle.tsv")]
    per = {}
    for srv, strat, n, r0, p0, a0, r1, p1, a1 in rows:
        n_, r0, p0, a0, r1, p1, a1 = int(n), *map(float, (r0, p0, a0, r1, p1, a1))
        g = json.load(open(f"{out}/idle-{srv}-{strat}-{n}/summary.json"))["groups"][0] if os.path.exists(f"{out}/idle-{srv}-{strat}-{n}/summary.json") else None
        if g:
            check(srv, g)
        per[srv, strat, n] = ((r1 - r0) / n_ / 1024, (p1 - p0) / n_ / 1024, (a1 - a0) / n_ / 1024, r1, p1)
        print(f'{strat:10} {n:>6} {srv:6} {r0 / 2**20:13.1f} {r1 / 2**20:12.1f} {(r1 - r0) / n_ / 1024:12.1f} {(p1 - p0) / n_ / 1024:12.1f} '
              f'{(a1 - a0) / n_ / 1024:13.1f} {g["delivered"] if g else "-":>9} {g["lost"] if g else "-":>5} {g["errors"] if g else "-":>4}')
    for strat in sorted({r[1] for r in rows}):
        for n in sorted({r[2] for r in rows if r[1] == strat}, key=int):
            if ("pb", strat, n) in per and ("nchan", strat, n) in per:
                a, b = per["pb", strat, n], per["nchan", strat, n]
                print(f'{strat:10} {n:>6} {"ratio":6} {"":>13} {"":>12} {ratio(a[0], b[0]):>12} {ratio(a[1], b[1]):>12} {ratio(a[2], b[2]):>13}')
        sizes = sorted({int(r[2]) for r in rows if r[1] == strat})
        if len(sizes) >= 2:
            lo, hi = str(sizes[0]), str(sizes[-1])
            slope = {s: (per[s, strat, hi][4] - per[s, strat, lo][4]) / (int(hi) - int(lo)) / 1024
                     for s in ("pb", "nchan") if (s, strat, hi) in per and (s, strat, lo) in per}
            if len(slope) == 2:
                print(f'{strat:10} slope {lo}->{hi} (PSS held): pb {slope["pb"]:.1f} KiB/conn, nchan {slope["nchan"]:.1f} KiB/conn, ratio {ratio(slope["pb"], slope["nchan"])}')
    print()

print("integrity (latency runs, passing fan-out steps, idle runs): lost / duplicated / reordered / errors")
for srv in ("pb", "nchan"):
    print(f"  {srv:6} {bad[srv][0]} / {bad[srv][1]} / {bad[srv][2]} / {bad[srv][3]}")
EOF
} | tee "$OUT/result.txt"
