"""Decodes latency.hlog with HdrHistogram_py (PyPI `hdrhistogram`), an implementation
independent of the Rust crate that wrote it.

    hlog_python_check.py sample DIR   every interval of the hlog_sample example's log
                                      against what the writer says it holds (DIR/expected.json)
    hlog_python_check.py run DIR      a real run folder: per group, the intervals add up
                                      to the sample counts in DIR/summary.json
"""

import json
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader


def main(folder):
    expected = json.load(open(f"{folder}/expected.json", encoding="utf-8"))
    reader = HistogramLogReader(f"{folder}/run/latency.hlog", HdrHistogram(1, 3_600_000_000, 3))
    got = []
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        got.append(h)
    assert len(got) == len(expected), f"{len(got)} intervals decoded, {len(expected)} written"
    for i, (h, want) in enumerate(zip(got, expected)):
        where = f"interval {i} ({want['tag']})"
        assert h.get_tag() == want["tag"], f"{where}: tag {h.get_tag()!r}"
        assert abs(h.get_start_time_stamp() / 1000.0 - want["start_s"]) < 1e-6, f"{where}: start {h.get_start_time_stamp()}"
        length = (h.get_end_time_stamp() - h.get_start_time_stamp()) / 1000.0
        assert abs(length - want["length_s"]) < 1e-6, f"{where}: length {length}"
        assert h.get_total_count() == want["total_count"], f"{where}: count {h.get_total_count()}"
        for q in ("50", "90", "99"):
            v = h.get_value_at_percentile(float(q))
            assert v == want["p" + q], f"{where}: p{q} {v} != {want['p' + q]}"
        assert h.get_highest_equivalent_value(h.get_max_value()) == want["max"], f"{where}: max {h.get_max_value()}"
        for value, count in want["counts"].items():
            c = h.get_count_at_value(int(value))
            assert c == count, f"{where}: count at {value} is {c}, want {count}"
    print(f"ok: {len(got)} intervals of {folder}/run/latency.hlog decoded by HdrHistogram_py match")


def check_run(folder):
    summary = json.load(open(f"{folder}/summary.json", encoding="utf-8"))
    reader = HistogramLogReader(f"{folder}/latency.hlog", HdrHistogram(1, 3_600_000_000, 3))
    totals = {}
    intervals = 0
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        intervals += 1
        totals[h.get_tag()] = totals.get(h.get_tag(), 0) + h.get_total_count()
    assert intervals > 0, "no intervals decoded"
    for g in summary["groups"]:
        for tag, block in ((g["name"], "latency_us"), (g["name"] + ".uncorrected", "latency_uncorrected_us")):
            want = g[block]["count"]
            got = totals.get(tag, 0)
            assert got == want, f"group {g['name']}: {block}.count is {want} but the {tag} intervals hold {got}"
    print(f"ok: {intervals} intervals of {folder}/latency.hlog add up to summary.json's counts")


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        main(sys.argv[2])
    elif sys.argv[1] == "run":
        check_run(sys.argv[2])
    else:
        sys.exit(f"usage: {sys.argv[0]} sample|run DIR")
