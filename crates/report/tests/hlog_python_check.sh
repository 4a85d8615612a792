#!/usr/bin/env bash
# Checks latency.hlog with an independent decoder, HdrHistogram_py (PyPI package
# `hdrhistogram`), installed into a throwaway virtualenv: a sample log checked
# interval by interval, and the log of a real smoke run checked against its
# summary.json. Needs python3 with venv and network access to PyPI. Run from anywhere:
#   crates/report/tests/hlog_python_check.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check 'hdrhistogram==0.10.8'
cargo run --quiet -p pushbench-report --example hlog_sample -- "$work"
"$work/venv/bin/python" crates/report/tests/hlog_python_check.py sample "$work"
# And a real run on the embedded server: the log's intervals add up to summary.json.
RUST_LOG=warn cargo run --quiet -p pushbench -- run scenarios/smoke.toml --out "$work/smoke" >/dev/null
"$work/venv/bin/python" crates/report/tests/hlog_python_check.py run "$work/smoke"
