#!/usr/bin/env python
"""When would the sustained run have stopped under another stop rule? A CPU replay of saved runs.

    python benchmarks/stop_rule_replay.py benchmarks/results/logs/h200-20261204-g/accuracy-detail.json.gz

`benchmarks/accuracy.py --detail` saves every repeat's 100 ms segment series (`segment_t_s`,
`segment_power_w`). This replays `measure_kernel`'s stop rule on them (kernelprof.methods.settle_point,
the batch-means interval and the trend test, as `_settled_so_far` applies them) for a few settings of
the first check (`run_s`), the check cadence (`check_s`) and the settled stretch wanted
(`min_settled_s`), and prints each case's median stop time and the settled-stretch mean power
relative to the run as it was measured.

What it is not: a measurement. Per-call energy is approximated from segment power times segment
duration (calls per segment are fixed in a run), the samples' lag is one fixed delay, and a stop
that comes earlier changes nothing else in the run. The accuracy benchmark on the GPU is the check.
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernelprof.methods.settled import batch_edges_ns, mean_ci, trend  # noqa: E402
from kernelprof.methods.steady_state_analysis import settle_point  # noqa: E402

# (label, first check s, cadence s, settled wanted s)
RULES = [("0.5 s cadence (12-04)", 3.0, 0.5, 2.0), ("0.25 s cadence", 3.0, 0.25, 2.0),
         ("0.25 s, 1.5 s settled", 3.0, 0.25, 1.5)]
DATA_DELAY_S = 0.3  # two 100 ms segments kept back, the samples' lag and the 50 ms guard
TAIL_S = 0.25


def stop_s(t: np.ndarray, p: np.ndarray, first_s: float, cadence_s: float, settled_s: float,
           max_run_s: float = 6.0, tol_pct: float = 0.5, target_rel_ci: float = 0.01) -> tuple[float, int]:
    """(stop time, settle index) for segment edges `t` (s) and segment powers `p` (W)."""
    dur = np.diff(t)
    e = p * dur  # energy per segment; calls per segment are fixed, so also per call up to a constant
    c = first_s
    while c < max_run_s:
        n = int(np.searchsorted(t, c - DATA_DELAY_S, side="right")) - 1
        if n >= 4:
            edges = np.round(t[:n + 1] * 1e9).astype(np.int64)
            i0 = settle_point(edges, e[:n], np.array([]), np.array([]), 0.2, tol_pct)
            if i0 < n and t[n] - t[i0] >= settled_s:
                b = batch_edges_ns(int(edges[i0]), int(edges[n]), 0.5)
                per = []
                for x, y in zip(b[:-1], b[1:]):
                    inside = (edges[:-1] >= x) & (edges[1:] <= y + 1)
                    per.append(float(np.sum(e[:n][inside]) / max(1, int(np.sum(inside)))))
                m, ci = mean_ci(per)
                tr = trend([(x + y) / 2e9 for x, y in zip(b[:-1], b[1:])], per)
                if ci / m <= target_rel_ci and not (tr is not None and tr.significant(tol_pct)):
                    return c, i0
        c += cadence_s
    return max_run_s, -1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("detail", type=Path, help="accuracy.py --detail output (.json or .json.gz)")
    args = ap.parse_args(argv)
    opener = gzip.open if args.detail.suffix == ".gz" else open
    with opener(args.detail, "rt") as fh:
        detail = json.load(fh)
    print(f"{'case':26s} {'measured':>9s} " + " ".join(f"{r[0]:>24s}" for r in RULES))
    for case, x in detail.items():
        runs = [r for r in x["kernelprof"] if r.get("segment_t_s")]
        measured = statistics.median(r["run_s"] for r in runs)
        cols = []
        for _, first, cad, settled in RULES:
            stops = []
            for r in runs:
                t = np.asarray(r["segment_t_s"], np.float64)
                p = np.asarray(r["segment_power_w"], np.float64)
                n = min(len(t) - 1, len(p))
                s, _ = stop_s(t[:n + 1], p[:n], first, cad, settled)
                stops.append(s + TAIL_S)
            cols.append(f"{statistics.median(stops):21.2f} s ")
        print(f"{case:26s} {measured:7.2f} s " + " ".join(cols))
    print("(run length: stop + the 0.25 s tail; the measured column is the runs' own run_s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
