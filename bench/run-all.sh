#!/usr/bin/env bash
# Every figure of docs/performance.md, one script after another, on one build.
# Each script also runs on its own; knobs are documented at the top of each.
# Takes about 40 minutes (vs-nchan.sh: 10). Take figures on a quiet machine (`uptime` load < 0.7, no
# compiler running): the scripts record the load average at their start.
#
#   bench/run-all.sh                 # everything
#   ONLY="poll-throughput latency-floor" bench/run-all.sh
source "$(dirname "$0")/lib.sh"

need_wrk; need_oha; need_perf; need_python
build
export SKIP_BUILD=1
SCRIPTS="${ONLY:-poll-throughput latency-floor overhead connections fanout vs-nchan profile}"
for s in $SCRIPTS; do
    log "=== $s === (load $(cut -d" " -f1-3 /proc/loadavg))"
    "$BENCH_DIR/$s.sh"
    echo
done
log "results: $BENCH_DIR/out/ (one folder per script and time; result.txt is the summary)"
