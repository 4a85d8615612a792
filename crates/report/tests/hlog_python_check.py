"""Decodes latency.hlog with HdrHistogram_py (PyPI `hdrhistogram`), an implementation
independent of the Rust crate that wrote it, and compares every interval with what
the writer says it holds (expected.json from the hlog_sample example)."""

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


if __name__ == "__main__":
    main(sys.argv[1])
