"""How one NVML power source answers a known load, from plain arrays (after Yang, Adamek and Armour,
SC'24): its update period, its halfway crossing after a load step, the width of its response to
short bursts (its averaging window), and its energy against the counter between two marks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kernelprof.attribution.power_function import PowerFunction
from kernelprof.sampling.powertrace import GPUTrace


@dataclass(frozen=True)
class PeriodStats:
    median_ms: float | None
    p10_ms: float | None
    p90_ms: float | None
    n: int


def update_period(t_us: np.ndarray) -> PeriodStats:
    """Spacing of a source's timestamps (each distinct stamp is one update)."""
    t = np.unique(np.asarray(t_us, np.int64))
    if len(t) < 3:
        return PeriodStats(None, None, None, len(t))
    d = np.diff(t) / 1e3
    return PeriodStats(float(np.median(d)), float(np.percentile(d, 10)), float(np.percentile(d, 90)), len(d))


@dataclass(frozen=True)
class StepResponse:
    baseline_w: float | None
    busy_w: float | None
    t50_after_step_s: float | None  # when the reading crossed halfway, after the step
    lag_s: float | None  # t50 minus half the averaging window: the delay beyond the averaging


def step_response(t_us: np.ndarray, w: np.ndarray, step_ns: int, end_ns: int, *, window_s: float,
                  settle_s: float = 0.5) -> StepResponse:
    """Halfway crossing of a source after a load step at `step_ns` (load held until `end_ns`)."""
    t = (np.asarray(t_us, np.int64) * 1000 - step_ns) / 1e9
    w = np.asarray(w, np.float64)
    end = (end_ns - step_ns) / 1e9
    before = w[(t > -0.8) & (t < -0.02)]
    busy = w[(t > min(settle_s + window_s, end * 0.6)) & (t <= end)]
    if len(before) == 0 or len(busy) == 0:
        return StepResponse(None, None, None, None)
    base, top = float(np.mean(before)), float(np.median(busy))
    half = base + 0.5 * (top - base)
    after = np.nonzero((t > -0.02) & (w >= half))[0]
    if not len(after) or top - base < 10.0:
        return StepResponse(base, top, None, None)
    i = int(after[0])
    if i == 0 or t[i - 1] < -0.5:
        t50 = float(t[i])
    else:  # a box-car average ramps linearly: interpolate between the readings around the crossing
        f = (half - w[i - 1]) / (w[i] - w[i - 1]) if w[i] != w[i - 1] else 1.0
        t50 = float(t[i - 1] + f * (t[i] - t[i - 1]))
    return StepResponse(base, top, t50, t50 - window_s / 2)


@dataclass(frozen=True)
class BurstResponse:
    width_s: float | None  # full width at half maximum of the mean response to one burst
    peak_excess_w: float | None  # peak of the mean response above the baseline
    burst_s: float  # median burst length
    n_bursts: int
    n_readings: int


def burst_response(t_us: np.ndarray, w: np.ndarray, bursts: Sequence[tuple[int, int]], *,
                   baseline_w: float | None = None, span_s: tuple[float, float] = (-0.02, 0.08),
                   bin_s: float = 0.004) -> BurstResponse:
    """Fold readings on the end of the burst before them; the width of the mean response.

    A source averaging over W seconds answers a burst of B < W seconds with a trapezoid whose
    full width at half maximum is W, so this estimates the averaging window. It needs bursts
    whose spacing is not a multiple of the reading period (jittered gaps), else every burst is
    seen at the same phase.
    """
    b = np.array(sorted(bursts), dtype=np.int64).reshape(-1, 2)
    burst_s = float(np.median((b[:, 1] - b[:, 0]) / 1e9)) if len(b) else 0.0
    t_ns = np.asarray(t_us, np.int64) * 1000
    w = np.asarray(w, np.float64)
    if len(b) < 3 or len(t_ns) < 10:
        return BurstResponse(None, None, burst_s, len(b), 0)
    k = np.searchsorted(b[:, 0], t_ns, side="right") - 1  # the latest burst that started before t
    ok = k >= 0
    x = np.full(len(t_ns), np.nan)
    x[ok] = (t_ns[ok] - b[k[ok], 1]) / 1e9
    sel = ok & (x >= span_s[0]) & (x < span_s[1])
    if baseline_w is None:
        far = ok & (x > span_s[1])
        baseline_w = float(np.median(w[far])) if np.any(far) else float(np.min(w))
    edges = np.arange(span_s[0], span_s[1] + bin_s / 2, bin_s)
    idx = np.digitize(x[sel], edges) - 1
    excess = w[sel] - baseline_w
    prof = np.array([np.mean(excess[idx == i]) if np.any(idx == i) else np.nan for i in range(len(edges) - 1)])
    if np.all(np.isnan(prof)) or np.nanmax(prof) <= 0:
        return BurstResponse(None, None, burst_s, len(b), int(np.sum(sel)))
    prof = np.where(np.isnan(prof), 0.0, prof)
    smooth = np.convolve(prof, np.ones(3) / 3, mode="same")  # one noisy bin must not set the width
    peak = int(np.argmax(smooth))
    half = smooth[peak] / 2
    lo = peak
    while lo > 0 and smooth[lo - 1] >= half:
        lo -= 1
    hi = peak
    while hi < len(smooth) - 1 and smooth[hi + 1] >= half:
        hi += 1
    return BurstResponse((hi - lo + 1) * bin_s, float(smooth[peak]), burst_s, len(b), int(np.sum(sel)))


def counter_update_period(t_ns: np.ndarray, energy_j: np.ndarray) -> PeriodStats:
    """Update period of the energy counter from back-to-back reads: spacing of its steps."""
    e = np.asarray(energy_j, np.float64)
    steps = np.nonzero(np.diff(e) != 0)[0] + 1
    return update_period(np.asarray(t_ns, np.int64)[steps] // 1000)


@dataclass(frozen=True)
class Agreement:
    """Each source's energy over one window between two pinned counter marks, vs the counter."""

    label: str
    duty: float | None  # GPU-busy fraction from CUDA events
    window_s: float
    counter_j: float
    samples_j: float | None
    instant_j: float | None
    average_field_j: float | None  # mean of the 1 s field x window
    samples_diff_pct: float | None
    instant_diff_pct: float | None
    average_diff_pct: float | None
    counter_mean_w: float


def agreement(g: GPUTrace, t0_ns: int, t1_ns: int, label: str, duty: float | None = None,
              lag_s: float = 0.0) -> Agreement | None:
    """Compare sources over the first and last pinned counter marks inside [t0, t1]."""
    m = g.counter_t_us * 1000
    sel = np.nonzero((m >= t0_ns) & (m <= t1_ns) & g.counter_precise)[0]
    if len(sel) < 2:
        sel = np.nonzero((m >= t0_ns) & (m <= t1_ns))[0]
    if len(sel) < 2:
        return None
    i0, i1 = int(sel[0]), int(sel[-1])
    a, b = int(m[i0]), int(m[i1])
    window = (b - a) / 1e9
    if window < 0.2:  # two marks of one edge, not a window: the 100 ms counter steps would dominate
        return None
    counter = float(g.counter_j[i1] - g.counter_j[i0])
    period = g.sample_period_s()
    fs = PowerFunction.from_windows(g.samples_t_us, g.samples_w, period_s=period, lag_s=lag_s) \
        if len(g.samples_t_us) else None
    fperiod = float(np.median(np.diff(g.instant_t_us))) / 1e6 if len(g.instant_t_us) > 3 else 0.1
    fi = PowerFunction.from_windows(g.instant_t_us, g.instant_w, period_s=fperiod, gap_factor=3.0,
                                    backward=False) if len(g.instant_t_us) else None
    avg_sel = (g.average_t_us * 1000 >= a) & (g.average_t_us * 1000 <= b)
    s = fs.energy_j(a, b) if fs else None
    i = fi.energy_j(a, b) if fi else None
    av = float(np.mean(g.average_w[avg_sel])) * window if np.any(avg_sel) else None

    def pct(x):
        return None if x is None or counter == 0 else 100.0 * (x - counter) / counter

    return Agreement(label, duty, window, counter, s, i, av, pct(s), pct(i), pct(av), counter / window)
