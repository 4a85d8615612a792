# Shared helpers for the bench/ scripts. Sourced, never run.
#
# Every script: installs its tools if missing, builds pushbench (release) once,
# copies the binary to bench/.bin/ so a rebuild by someone else in the same tree
# cannot swap it mid-run, starts `pushbench serve` in its own process (killed on
# exit), and prints results. Raw outputs go to bench/out/<script>-<UTC time>/.
#
# Knobs (environment): RUNS (repetitions, median reported), DURATION (seconds per
# measured run), PORT (server port, default 18480), SKIP_BUILD=1 (use bench/.bin as is).

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/.tools"
PB="$BENCH_DIR/.bin/pushbench"
PORT="${PORT:-18480}"
HOST="${HOST:-127.0.0.1}"
BASE="http://$HOST:$PORT"
RUNS="${RUNS:-3}"
export PATH="$TOOLS/bin:$PATH"

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- tools -----------------------------------------------------------------------

apt_install() {
    # Debian packages; `apt-get update` only once per machine boot.
    local pkgs=("$@")
    if [ "$(id -u)" -ne 0 ]; then
        sudo -n true 2>/dev/null || { log "need root (or sudo) to apt-get install ${pkgs[*]}"; exit 1; }
        local SUDO=sudo
    else
        local SUDO=
    fi
    if [ ! -f /tmp/.pushbench-apt-updated ]; then
        $SUDO apt-get update -qq && touch /tmp/.pushbench-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

need_wrk() { command -v wrk >/dev/null || { log "installing wrk (Debian)"; apt_install wrk; }; }
need_perf() { command -v perf >/dev/null || { log "installing linux-perf (Debian)"; apt_install linux-perf; }; }
need_python() { command -v python3 >/dev/null || { log "installing python3 (Debian)"; apt_install python3; }; }
need_oha() {
    if ! command -v oha >/dev/null; then
        log "installing oha from crates.io into $TOOLS (a few minutes, once)"
        cargo install oha --version 1.16.0 --locked --root "$TOOLS" >&2
    fi
}

# --- build -----------------------------------------------------------------------

build() {
    if [ "${SKIP_BUILD:-0}" = 1 ] && [ -x "$PB" ]; then return; fi
    log "cargo build --release -p pushbench"
    (cd "$ROOT" && cargo build --release -p pushbench >&2)
    mkdir -p "$BENCH_DIR/.bin"
    cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/pushbench" "$PB.tmp" && mv "$PB.tmp" "$PB"
    # What the copy was built from (others may commit while the figures are taken).
    echo "$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock || echo ' + uncommitted changes in crates/')" >"$PB.commit"
}

# --- processes -------------------------------------------------------------------

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

# start_server [extra serve flags...]: sets SERVER_PID; waits for /healthz.
start_server() {
    if curl -s -o /dev/null --max-time 1 "$BASE/healthz"; then
        log "something already listens on $BASE: set PORT=... to a free port"; exit 1
    fi
    "$PB" serve --addr "$HOST:$PORT" "$@" >"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_healthy "$BASE" "server did not come up; see $OUT/server.log"
}

# wait_healthy BASE MESSAGE: waits up to 5 s for BASE/healthz to answer; otherwise
# logs MESSAGE and exits.
wait_healthy() {
    local _
    for _ in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "$1/healthz" && return 0
        sleep 0.05
    done
    log "$2"; exit 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# Resident memory of a process in bytes (VmRSS).
rss_bytes() { awk '/^VmRSS:/ {printf "%.0f\n", $2 * 1024}' "/proc/$1/status"; }

# CPU seconds (user+sys) of a process.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

# --- output ----------------------------------------------------------------------

# new_out NAME: creates bench/out/NAME-<UTC time>/ as $OUT, records the machine.
new_out() {
    OUT="$BENCH_DIR/out/$1-$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$OUT"
    machine >"$OUT/machine.txt"
}

machine() {
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), fd limit $(ulimit -Hn)"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start; cargo/rustc processes: $(pgrep -c -x 'cargo|rustc' || true)"
    echo "binary:  pushbench built from $(cat "$PB.commit" 2>/dev/null || echo 'unknown (built outside build())')"
}

# median of numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2}}'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b+0 == 0) print "n/a"; else printf "%.2f", a/b }'; }

# Publish N small events to topic $1 and print the last seq.
publish_n() {
    local topic=$1 n=$2 i seq=0
    for i in $(seq 1 "$n"); do
        seq=$(curl -s -X POST "$BASE/topics/$topic/events" -d "{\"n\":$i,\"msg\":\"hello from bench\"}" | sed 's/[^0-9]//g')
    done
    echo "$seq"
}

# Field of summary.json: sj FILE PYTHON-EXPR (d = the summary, g = {name: group}).
sj() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
g = {x["name"]: x for x in d["groups"]}
v = eval(sys.argv[2])
print(v)
EOF
}
