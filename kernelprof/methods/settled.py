"""The settled power state of a kernel looped back to back, found and checked from the readings.

On Hopper the power limiter overshoots and undershoots for about a second after a load starts
(SENSOR_FACTS.md, H200: bf16 GEMM 4096^3 read 721 W at 1680 MHz in its first 0.5 s, 664 W at
1500 MHz in the next, then 689-693 W for 30 s). A fixed ramp cut either wastes time or keeps part
of that transient: 1 s trials after idle gaps read +5% on that GEMM. This module turns one
continuous run into ~100 ms segments and:

1. finds where the transient ends by MSER (the marginal standard error rule of White, 1997, used
   to truncate warm-up in simulation output): the cut d that minimizes the variance of the mean of
   what is left, var(x[d:]) / (n - d), over the segments' energy per call and over the SM clock;
2. over the settled stretch, takes energy per call from the energy counter between readings pinned
   to its 100 ms updates (the counter is the integral the sensor's own window averages cannot
   bias), with the buffered samples as the cross-check, and time per call from CUDA events;
3. gives the interval from batch means (batches of ~0.5 s, several times the power's correlation
   time), so neighbouring segments' correlation does not shrink it;
4. checks the stretch is settled: the trend of the batch means across it, as a percentage of the
   mean over its length; a trend larger than the tolerance and than twice its standard error is
   flagged `not_settled` with its size.

Everything here is plain arithmetic on recorded numbers, so it runs (and is tested) without a GPU.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Two-sided 95% Student t quantiles by degrees of freedom, for intervals over a few batches.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def t95(dof: int) -> float:
    """Two-sided 95% Student t quantile for `dof` degrees of freedom (1.96 past 30)."""
    if dof <= 0:
        return math.inf
    for k in sorted(_T95):
        if dof <= k:
            return _T95[k]
    return 1.96


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the 95% CI half-width of the mean (Student t)."""
    vals = [float(v) for v in values]
    if not vals:
        return math.nan, math.inf
    m = statistics.fmean(vals)
    if len(vals) < 2:
        return m, math.inf
    return m, t95(len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))


def mser_cut(x: Sequence[float], max_fraction: float = 0.5, batch: int = 1) -> int:
    """Index where the warm-up transient of series `x` ends, by the MSER rule.

    Minimizes var(x[d:]) / (n - d) over d in [0, max_fraction * n]; a series without a transient
    gives 0. NaNs (segments with no reading) are dropped before, and the index maps back. With
    `batch` > 1 the rule runs on means of `batch` consecutive values (MSER-5 for 5): the limiter's
    own 100-300 ms oscillation under a power cap is then part of the settled state, not a transient
    (on an H200 a capped GEMM's 100 ms segments dipped from 720 to 595 W seconds into the run, and
    MSER on single segments cut at 3 s, H200 2026-12-01).
    """
    arr = np.asarray(x, dtype=np.float64)
    keep = np.nonzero(np.isfinite(arr))[0]
    if batch > 1:
        nb = len(keep) // batch
        if nb < 4:
            return 0
        means = arr[keep[: nb * batch]].reshape(nb, batch).mean(axis=1)
        c = mser_cut(means, max_fraction)
        if c == 0:
            lo = 0
        else:  # refine to one value inside the batch before the cut: the rule on single values there
            lo = (c - 1) * batch
        tail = arr[keep[lo:]]
        fine = mser_cut(tail, max_fraction=min(0.5, (2 * batch) / max(len(tail), 1)))
        return int(keep[min(lo + fine, c * batch)])
    v = arr[keep]
    n = len(v)
    if n < 4:
        return 0
    v = v - np.median(v)  # centred, so the suffix sums below do not cancel
    # Suffix sums give every tail's mean and variance in one pass.
    s1 = np.cumsum(v[::-1])[::-1]
    s2 = np.cumsum((v * v)[::-1])[::-1]
    m = np.arange(n, 0, -1, dtype=np.float64)
    var = np.maximum(s2 / m - (s1 / m) ** 2, 0.0)
    last = max(0, min(n - 2, int(max_fraction * n)))
    stat = var[: last + 1] / m[: last + 1]
    # The first cut within rounding of the minimum: a noise-free settled tail ties for every later cut.
    tol = 1e-12 * max(float(np.max(np.abs(v))) ** 2, 1e-300)
    d = int(np.nonzero(stat <= stat.min() + tol)[0][0])
    return int(keep[d])


@dataclass(frozen=True)
class Trend:
    """Linear trend of batch means across a stretch, as a percentage of their mean over its length."""

    drift_pct: float
    drift_se_pct: float

    def significant(self, tolerance_pct: float) -> bool:
        return abs(self.drift_pct) > tolerance_pct and abs(self.drift_pct) > 2 * self.drift_se_pct


def trend(t_s: Sequence[float], values: Sequence[float]) -> Trend | None:
    """Least-squares slope of values on time, times the time span, over the mean (%). None for <3 points."""
    t = np.asarray(t_s, np.float64)
    y = np.asarray(values, np.float64)
    if len(t) < 3 or np.ptp(t) <= 0:
        return None
    tc = t - t.mean()
    sxx = float(np.sum(tc * tc))
    slope = float(np.sum(tc * (y - y.mean())) / sxx)
    resid = y - (y.mean() + slope * tc)
    se = math.sqrt(float(np.sum(resid * resid)) / (len(t) - 2) / sxx) if len(t) > 2 else math.inf
    scale = 100.0 * float(np.ptp(t)) / float(y.mean()) if y.mean() else math.nan
    return Trend(slope * scale, se * scale)


class CallClock:
    """Cumulative calls as a function of host time, from CUDA events at segment edges.

    Between two events the calls are spread evenly (the kernel ran back to back), so a counter
    reading pinned between events gets its fractional share of the segment's calls.
    """

    def __init__(self, edges_ns: Sequence[int], calls: Sequence[int]) -> None:
        if len(edges_ns) != len(calls) + 1:
            raise ValueError(f"need one more edge than segments, got {len(edges_ns)} edges for {len(calls)} segments")
        self.edges_ns = np.asarray(edges_ns, np.float64)
        self.cum = np.concatenate([[0.0], np.cumsum(np.asarray(calls, np.float64))])

    def calls_at(self, t_ns: float) -> float:
        return float(np.interp(t_ns, self.edges_ns, self.cum))

    def calls_between(self, t0_ns: float, t1_ns: float) -> float:
        return self.calls_at(t1_ns) - self.calls_at(t0_ns)


@dataclass(frozen=True)
class Batch:
    """One batch of the settled stretch: a span between two pinned counter readings, or of samples."""

    t0_s: float  # seconds after the run's first launch
    duration_s: float
    calls: float
    time_per_call_s: float
    energy_per_call_j: float
    mean_power_w: float
    source: str  # energy_counter | nvml_samples


def counter_batches(pins_ns: Sequence[int], pins_j: Sequence[float], clock: CallClock,
                    run_start_ns: int) -> list[Batch]:
    """Batches between consecutive pinned counter readings (all inside the settled stretch)."""
    out = []
    for a, b, ea, eb in zip(pins_ns[:-1], pins_ns[1:], pins_j[:-1], pins_j[1:]):
        calls = clock.calls_between(a, b)
        dur = (b - a) / 1e9
        if calls <= 0 or dur <= 0:
            continue
        e = float(eb - ea)
        out.append(Batch((a - run_start_ns) / 1e9, dur, calls, dur / calls, e / calls, e / dur, "energy_counter"))
    return out


def batch_edges_ns(t0_ns: int, t1_ns: int, batch_s: float) -> list[int]:
    """Edges of equal batches of about `batch_s` (at least one) over [t0, t1]."""
    n = max(1, int((t1_ns - t0_ns) / 1e9 / batch_s))
    return [int(x) for x in np.linspace(t0_ns, t1_ns, n + 1)]


def sample_batches(edges_ns: Sequence[int], energies_j: Sequence[float | None], clock: CallClock,
                   run_start_ns: int) -> list[Batch]:
    """Batches between consecutive edges, with the samples' energy of each (None: no reading)."""
    out = []
    for a, b, e in zip(edges_ns[:-1], edges_ns[1:], energies_j):
        calls = clock.calls_between(a, b)
        dur = (b - a) / 1e9
        if e is None or calls <= 0 or dur <= 0:
            continue
        out.append(Batch((a - run_start_ns) / 1e9, dur, calls, dur / calls, e / calls, e / dur, "nvml_samples"))
    return out


def ratio_over(batches: Sequence[Batch]) -> tuple[float, float, float]:
    """(energy per call, time per call, mean power) over the batches' union: totals, not means of ratios."""
    calls = sum(b.calls for b in batches)
    energy = sum(b.energy_per_call_j * b.calls for b in batches)
    dur = sum(b.duration_s for b in batches)
    return energy / calls, dur / calls, energy / dur
