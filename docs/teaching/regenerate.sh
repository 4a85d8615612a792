#!/usr/bin/env bash
# Regenerates the teaching guide's runs, charts and numbers (docs/teaching.md).
#
#   docs/teaching/regenerate.sh                 build, run every scenario, copy charts, rewrite numbers
#   docs/teaching/regenerate.sh --text-only     rewrite the numbers from the committed runs only
#   docs/teaching/regenerate.sh --only quickstart,ticker   re-run some scenarios, then rewrite all numbers
#
# The work is done by crates/report/examples/teaching.rs (the list of runs, the
# charts each lesson keeps and the generated blocks live there).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

start=$(date +%s)
text_only=0
for a in "$@"; do [ "$a" = "--text-only" ] && text_only=1; done
if [ "$text_only" = 0 ]; then
  cargo build --release -p pushbench
fi
cargo build --release -p pushbench-report --example teaching
"$target/release/examples/teaching" --bin "$target/release/pushbench" "$@"
echo "regenerated in $(( $(date +%s) - start )) s: review 'git diff docs/teaching.md docs/teaching/' and commit both"
