"""benchmarks/stop_rule_replay.py on the shipped 12-04 accuracy run (real H200 segments, CPU only)."""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DETAIL = ROOT / "benchmarks/results/logs/h200-20261204-g/accuracy-detail.json.gz"
sys.path.insert(0, str(ROOT / "benchmarks"))

import stop_rule_replay as replay  # noqa: E402


def _runs():
    with gzip.open(DETAIL, "rt") as fh:
        detail = json.load(fh)
    for case, x in detail.items():
        for r in x["kernelprof"]:
            t = np.asarray(r["segment_t_s"], np.float64)
            p = np.asarray(r["segment_power_w"], np.float64)
            n = min(len(t) - 1, len(p))
            yield case, t[:n + 1], p[:n]


def test_a_finer_cadence_never_stops_later():
    # The 0.25 s looks include every 0.5 s look (both start at 3 s), so the first stop can only come sooner.
    for case, t, p in _runs():
        coarse, _ = replay.stop_s(t, p, 3.0, 0.5, 2.0)
        fine, _ = replay.stop_s(t, p, 3.0, 0.25, 2.0)
        assert fine <= coarse, case


def test_every_stop_leaves_the_settled_stretch_it_asked_for():
    for case, t, p in _runs():
        stop, i0 = replay.stop_s(t, p, 3.0, 0.25, 2.0)
        if i0 >= 0:  # stopped before max_run_s: the settled stretch is in the data it saw
            assert stop - replay.DATA_DELAY_S - t[i0] >= 2.0 - 1e-9, case


def test_the_replay_prints_every_case(capsys):
    assert replay.main([str(DETAIL)]) == 0
    out = capsys.readouterr().out
    assert out.count(" s ") >= 9 and "decode-b16-ctx8192" in out and "fma-fp32-lowpower" in out

