"""Print `requests_per_s p99_us` from wrk --latency output on stdin."""
import re
import sys

text = sys.stdin.read()
UNIT = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 6e7}
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
bad = int(errs.group(1)) if errs else 0
if sock:
    bad += sum(int(x) for x in sock.groups())
print(
    f"{float(rps.group(1)) if rps else 0:.0f}",
    f"{float(p99.group(1)) * UNIT[p99.group(2)] if p99 else 0:.0f}",
    bad,
)
