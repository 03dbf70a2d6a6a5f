"""Buffered-sample power disciplined by the energy counter: the counter's totals, the samples' shape.

The energy counter (mJ since driver load, ~100 ms updates) is the better total: samples and counter
differed by up to ~2% at low power on the H200 (Profiler phases of 6 s, 2026-12-01), while the
samples give the ~20 ms shape. The sampler pins the counter to its updates at a regular cadence
(`SamplerConfig.counter_interval_s`); each consecutive pair of pinned readings is a *span* whose
energy is known exactly (to the pin's timing). Inside each span the sample power above the span's
floor F (its lowest sample power) is multiplied by one scale, (counter - F x L) / (samples - F x L)
over the span of length L, and the floor itself is kept, so that:

- every span, and every union of spans, integrates to the counter exactly;
- the samples' shape inside a span keeps its order and its floor (only the part above it moves);
- the disciplined power is again a piecewise-constant function with one cumulative integral, so
  adjacent intervals still add up to their union exactly.

Why above the floor and not the whole power: the samples' error against the counter is not a gain.
Steady power reads right and bursty power reads wrong: on the H200 square-wave recording
(tests/data/power_duty_pinned.json, 0.5 s spans) idle spans needed -0.17..+0.14% and continuous load
-0.75..+0.14%, while 5/95, 2/98, 10/30 and 20/20 ms square waves needed +4.3..+7.4%, +2.3..+2.6%,
-11.5..+15.1% and +0.6..+4.9% (the ~20 ms sample windows beat against the load's period; over 2 s
they average out). benchmarks/results/logs/counter-discipline-analysis-h200.md has the numbers.
What such a window misreads is the part of the power that changes inside it, the burst above the
floor, so that is where a span's correction belongs. A span that straddles a step from idle to a
bursty load scaled as a whole gave the idle side a share of the bursty side's correction (up to
+4.8 J of a 2 s, 335 J phase); above the floor the idle side keeps its own reading.

Why a scale constant per span and not a piecewise-linear scale continuous at the pins: a linear
scale that matched every span's integral has one more unknown than equations (a node per pin, an
equation per span), and solving that bidiagonal system alternates in sign from span to span (the
node values oscillate and amplify the counter's pin timing noise) unless it is regularized; a
regularized version no longer matches the counter per span. The constant scale matches exactly, is
local (a bad span changes nothing outside itself) and steps at a pin by the change in correction
between neighbouring spans.

The pins are first placed on the counter's own update grid, fitted to them (`on_update_grid`): a
stamp thrown by a sampler thread held up between its reads would otherwise move a power step's
energy across the pin.

An interval that does not start and end at pins gets part of a span's correction in proportion to
its sample energy above the span's floor there; how the span's correction is really distributed
inside it is unknown. The uncertainty models the samples' cumulative error against the counter as a
random walk with diffusion `sigma2_j2_per_s` (estimated from the spans' own residuals), which the
discipline pins to zero at every pin: inside a span of length L the error at time tau after its start is a Brownian bridge of
variance sigma2 * tau * (L - tau) / L. An interval's variance is the sum of its two edges' bridge
variances (or sigma2 * d * (L - d) / L for both edges in one span, d apart), plus the pins' timing
(power at the edge x the pin's timing spread). Edges on pins carry only the timing term; parts of an
interval outside every span are raw samples, and their uncertainty is not derived (None, with a note).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kernelprof.sampling.powertrace import GPUTrace

METHOD = "counter_scale_above_floor_per_span"
# The energy counter updates every 100 ms on the H100 and the H200 (SENSOR_FACTS.md).
COUNTER_PERIOD_S = 0.100
# A pinned reading is stamped at the midpoint of the last read before the step and the first after,
# which lie one call apart: a uniform spread of one call (2.8 ms on the H200, ~4 ms on the H100).
DEFAULT_COUNTER_CALL_S = 0.003


@dataclass(frozen=True)
class DisciplineSpan:
    """Between two consecutive pinned counter readings: the counter's and the samples' energy."""

    t0_us: int
    t1_us: int
    counter_energy_j: float
    samples_energy_j: float
    scale: float  # counter / samples over the span (its correction; 1 where the span was rejected)
    floor_w: float = 0.0  # the span's lowest sample power: kept as read, the power above it is scaled

    @property
    def scale_above_floor(self) -> float:
        """The factor on the sample power above `floor_w`, so that the span integrates to the counter."""
        if self.floor_w == 0.0:
            return self.scale
        floor_j = self.floor_w * self.time_s
        return (self.counter_energy_j - floor_j) / (self.samples_energy_j - floor_j)

    @property
    def time_s(self) -> float:
        return (self.t1_us - self.t0_us) / 1e6

    @property
    def correction_pct(self) -> float:
        return 100.0 * (self.scale - 1.0)


@dataclass(frozen=True)
class DisciplineSummary:
    """One GPU's discipline: how many spans, how big the corrections, the uncertainty model."""

    method: str
    n_pins: int
    n_spans: int
    span_median_s: float
    span_max_s: float
    correction_pct_min: float
    correction_pct_median: float
    correction_pct_max: float
    sigma2_j2_per_s: float  # diffusion of the samples' cumulative error (the bridge model above)
    pin_sigma_s: float  # one pin's timing spread (1 sigma)
    covered_t0_us: int
    covered_t1_us: int
    note: str

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class DisciplinedEnergy:
    """One interval on one GPU: raw samples, disciplined energy, the correction and its coverage.

    coverage: fraction of the interval inside counter spans (the rest is raw samples).
    uncertainty_j: 1 sigma of the disciplined energy (see the module docstring), None where part
    of the interval lies outside every span.
    """

    raw_energy_j: float
    energy_j: float
    correction_j: float
    correction_pct: float | None  # of the raw samples
    coverage: float
    full_spans: int  # spans that lie entirely inside the interval
    partial_s: float  # time of the interval inside spans that it covers only partly
    uncertainty_j: float | None
    uncertainty_note: str


def pinned_readings(g: GPUTrace, *, min_spacing_s: float = 0.5 * COUNTER_PERIOD_S) -> tuple[np.ndarray, np.ndarray, str]:
    """The precise (pinned) counter readings usable as pins: (t_us, energy_j, what was dropped).

    Unpinned readings are stale by up to a period and cannot be pins. Two pins closer than half a
    period were answered by the same update (back-to-back marks): the first is kept. A reading below
    its predecessor (counter reset) ends nothing silently: it is dropped and said.
    """
    sel = np.asarray(g.counter_precise, bool)
    t = np.asarray(g.counter_t_us, np.int64)[sel]
    e = np.asarray(g.counter_j, np.float64)[sel]
    order = np.argsort(t, kind="stable")
    t, e = t[order], e[order]
    keep_t: list[int] = []
    keep_e: list[float] = []
    dropped_close = dropped_back = 0
    for ti, ei in zip(t.tolist(), e.tolist()):
        if keep_t and ti - keep_t[-1] < min_spacing_s * 1e6:
            dropped_close += 1
            continue
        if keep_e and ei < keep_e[-1]:
            dropped_back += 1
            continue
        keep_t.append(ti)
        keep_e.append(ei)
    notes = []
    if dropped_close:
        notes.append(f"{dropped_close} pinned reading(s) within {min_spacing_s * 1e3:.0f} ms of the previous one "
                     "(the same counter update) were not used")
    if dropped_back:
        notes.append(f"{dropped_back} pinned reading(s) below the previous value (counter reset?) were not used")
    return np.asarray(keep_t, np.int64), np.asarray(keep_e, np.float64), "; ".join(notes)


# Fewer pins than this and one stamp thrown by a descheduled thread cannot be told from the grid.
GRID_MIN_PINS = 8


def on_update_grid(t_us: np.ndarray, call_s: float) -> tuple[np.ndarray, str]:
    """Pinned stamps moved onto the counter's own update grid, fitted to them: (t_us, what was done).

    The counter updates on its own clock every ~100 ms (SENSOR_FACTS.md), so every pin is one of
    those updates, t = t_0 + k x period. A stamp is the midpoint between the read before the step
    and the read that saw it: one call's uniform spread when the sampler thread runs on time, but
    half the gap when it was held up between the two reads (on the H200 square-wave recording two of
    36 pins, one 8 ms after a phase boundary, sat 8.1 and 7.3 ms late against a grid the others fit
    to 0.95 ms). A straight-line fit over the pins, refitted without stamps beyond 3 sigma, places
    each pin on its update. The stamps are kept as they are when there are fewer than GRID_MIN_PINS,
    when spacings are not whole periods, when the pins that fit spread by more than one counter call
    or the fitted period is more than 2% off 100 ms (then the counter is not on one grid here, and
    no grid is claimed).
    """
    t_us = np.asarray(t_us, np.int64)
    if len(t_us) < GRID_MIN_PINS:
        return t_us, ""
    steps = np.diff(t_us) / (COUNTER_PERIOD_S * 1e6)
    n = np.round(steps)
    if np.any(n < 1) or np.any(np.abs(steps - n) > 0.25):
        return t_us, "pins not a whole number of counter periods apart: stamps kept"
    k = np.concatenate([[0.0], np.cumsum(n)])
    x = (t_us - t_us[0]).astype(np.float64)
    use = np.ones(len(t_us), bool)
    for _ in range(3):
        slope, icpt = np.polyfit(k[use], x[use], 1)
        r = x - (icpt + slope * k)
        sigma = 1.4826 * float(np.median(np.abs(r[use] - np.median(r[use]))))
        use = np.abs(r) <= 3 * max(sigma, call_s * 1e6 / math.sqrt(12.0))
    if sigma > call_s * 1e6:
        return t_us, (f"pins spread {sigma / 1e3:.1f} ms about a {slope / 1e3:.2f} ms grid (more than one counter "
                      "call): stamps kept")
    if abs(slope / (COUNTER_PERIOD_S * 1e6) - 1) > 0.02:
        return t_us, f"pins fit a {slope / 1e3:.2f} ms grid, not the counter's ~100 ms: stamps kept"
    moved = np.abs(r[~use])
    note = (f"pins placed on the counter's update grid ({slope / 1e3:.3f} ms period, spread {sigma / 1e3:.2f} ms)"
            + (f"; {len(moved)} stamp(s) off it by {', '.join(f'{m / 1e3:.1f}' for m in moved)} ms moved" if len(moved)
               else ""))
    return t_us[0] + np.round(icpt + slope * k).astype(np.int64), note


def _sigma2(spans: list[DisciplineSpan]) -> tuple[float, str]:
    """Diffusion (J^2/s) of the samples' cumulative error against the counter, from the spans.

    With 3 or more spans: the residuals e_i = samples - counter about one constant error rate (the
    part a single gain would remove), sigma2 = mean((e_i - r L_i)^2 / L_i). Load-dependent bias stays
    in it, so it errs large. With fewer: sum(e_i^2) / sum(L_i), larger still.
    """
    e = np.array([s.samples_energy_j - s.counter_energy_j for s in spans])
    L = np.array([s.time_s for s in spans])
    if len(spans) >= 3:
        r = float(np.sum(e) / np.sum(L))
        return float(np.mean((e - r * L) ** 2 / L)), f"from {len(spans)} spans' residuals about one error rate"
    return float(np.sum(e ** 2) / np.sum(L)), f"from {len(spans)} span(s) only: their whole correction (conservative)"


@dataclass(frozen=True, eq=False)
class CounterDiscipline:
    """Sample power scaled per counter span; `power` integrates like the raw PowerFunction."""

    raw: Any  # attribution.PowerFunction of the samples
    power: Any  # attribution.PowerFunction, disciplined
    spans: tuple[DisciplineSpan, ...]
    summary: DisciplineSummary

    @property
    def pins_ns(self) -> np.ndarray:
        return np.array([s.t0_us for s in self.spans] + [self.spans[-1].t1_us], np.int64) * 1000

    def _span_at(self, t_ns: int) -> int | None:
        pins = self.pins_ns
        k = int(np.searchsorted(pins, t_ns, side="right")) - 1
        return k if 0 <= k < len(self.spans) and t_ns < pins[k + 1] else None

    def _power_at(self, t_ns: int) -> float:
        f = self.power
        x = f._x(t_ns)
        k = min(max(int(np.searchsorted(f.edges_s, x, side="right")) - 1, 0), len(f.power_w) - 1)
        return float(f.power_w[k])

    def interval(self, t0_ns: int, t1_ns: int) -> DisciplinedEnergy:
        raw = self.raw.energy_j(t0_ns, t1_ns)
        energy = self.power.energy_j(t0_ns, t1_ns)
        pins = self.pins_ns
        lo, hi = int(pins[0]), int(pins[-1])
        dur_ns = max(t1_ns - t0_ns, 0)
        inside_ns = max(0, min(t1_ns, hi) - max(t0_ns, lo))
        coverage = inside_ns / dur_ns if dur_ns else (1.0 if lo <= t0_ns <= hi else 0.0)
        full = int(np.sum((pins[:-1] >= t0_ns) & (pins[1:] <= t1_ns)))
        s2, pin_s = self.summary.sigma2_j2_per_s, self.summary.pin_sigma_s
        k0, k1 = self._span_at(t0_ns), self._span_at(t1_ns)
        partial_ns = 0
        var = 0.0
        for t, k in ((t0_ns, k0), (t1_ns, k1)):
            var += (self._power_at(t) * pin_s) ** 2
        if k0 is not None and k0 == k1:
            sp = self.spans[k0]
            d, L = dur_ns / 1e9, sp.time_s
            var += s2 * d * max(L - d, 0.0) / L
            partial_ns = dur_ns if d < L else 0
        else:
            for t, k in ((t0_ns, k0), (t1_ns, k1)):
                if k is None:
                    continue
                sp = self.spans[k]
                tau, L = (t - sp.t0_us * 1000) / 1e9, sp.time_s
                var += s2 * tau * max(L - tau, 0.0) / L
                if tau > 0:
                    partial_ns += int(tau * 1e9) if t == t1_ns else int((L - tau) * 1e9)
        if coverage < 0.9999:
            unc, note = None, (f"{(1 - coverage) * dur_ns / 1e9:.3f} s of {dur_ns / 1e9:.3f} s lie outside the "
                               "counter spans: raw samples there, uncertainty not derived")
        elif full == 0 and k0 is not None and k0 == k1:
            unc, note = math.sqrt(var), (f"inside one {self.spans[k0].time_s:.2f} s counter span: its correction "
                                         "shared by sample energy (bridge model), the span's exact total unused")
        else:
            unc, note = math.sqrt(var), (f"{full} whole counter span(s) exact; {partial_ns / 1e9:.3f} s in partly "
                                         "covered spans (bridge model) and the pins' timing")
        corr = energy - raw
        return DisciplinedEnergy(raw, energy, corr, 100.0 * corr / raw if raw else None, coverage, full,
                                 partial_ns / 1e9, unc, note)


def build_discipline(samples: Any, g: GPUTrace, *, pin_sigma_s: float | None = None,
                     max_correction: float = 0.5) -> tuple[CounterDiscipline | None, str]:
    """Discipline the sample PowerFunction `samples` with `g`'s pinned counter readings.

    Returns (discipline, note); (None, why) when there are fewer than two pins inside the samples'
    span. A span whose scale is off by more than `max_correction` (50%: lost samples, a broken pin)
    keeps scale 1 and the note says so, rather than moving a shape by a factor nobody can defend.
    """
    t_us, e_j, dropped = pinned_readings(g)
    if samples is None:
        return None, "no buffered samples to discipline"
    lo_ns = samples.origin_us * 1000 + int(samples.edges_s[0] * 1e9)
    hi_ns = samples.origin_us * 1000 + int(samples.edges_s[-1] * 1e9)
    inside = (t_us * 1000 >= lo_ns) & (t_us * 1000 <= hi_ns)
    t_us, e_j = t_us[inside], e_j[inside]
    if len(t_us) < 2:
        return None, f"{len(t_us)} pinned counter reading(s) inside the sampled span; discipline needs two"
    call_s = g.call_latency_us.get("counter", DEFAULT_COUNTER_CALL_S * 1e6) / 1e6
    t_us, grid_note = on_update_grid(t_us, call_s)
    spans = []
    good = []  # spans whose correction is plausible: the ones the uncertainty is estimated from
    rejected = whole = 0
    for a, b, ea, eb in zip(t_us[:-1], t_us[1:], e_j[:-1], e_j[1:]):
        se = samples.energy_j(int(a) * 1000, int(b) * 1000)
        ce = float(eb - ea)
        scale = ce / se if se > 0 else 1.0
        floor_w = 0.0
        if not abs(scale - 1.0) <= max_correction:
            rejected += 1
            scale = 1.0
        else:
            good.append(len(spans))
            floor_w = _floor_w(samples, int(a) * 1000, int(b) * 1000)
            above_j = se - floor_w * (b - a) / 1e6
            if floor_w > 0 and not (above_j > 0 and abs((ce - se) / above_j) <= max_correction):
                whole += 1
                floor_w = 0.0
        spans.append(DisciplineSpan(int(a), int(b), ce, se, scale, floor_w))
    power = _scaled(samples, spans)
    s2, s2_note = _sigma2([spans[i] for i in good] or spans)
    # one call's spread per pin, as if unsnapped: the grid is better than that, but not claimed
    pin_s = pin_sigma_s if pin_sigma_s is not None else call_s / math.sqrt(12.0)
    corr = np.array([s.correction_pct for s in spans])
    lens = np.array([s.time_s for s in spans])
    notes = [f"{len(spans)} counter span(s) of median {np.median(lens):.2f} s; sample power above each span's floor "
             f"scaled to the counter (corrections {corr.min():+.2f}% to {corr.max():+.2f}%); uncertainty {s2_note}"]
    if whole:
        notes.append(f"{whole} span(s) whose power above the floor could not carry the correction within "
                     f"{max_correction:.0%} scaled their whole power")
    if grid_note:
        notes.append(grid_note)
    if rejected:
        notes.append(f"{rejected} span(s) off by more than {max_correction:.0%} kept the raw samples")
    if dropped:
        notes.append(dropped)
    summary = DisciplineSummary(METHOD, len(t_us), len(spans), float(np.median(lens)), float(lens.max()),
                                float(corr.min()), float(np.median(corr)), float(corr.max()), s2, pin_s,
                                int(t_us[0]), int(t_us[-1]), "; ".join(notes))
    return CounterDiscipline(samples, power, tuple(spans), summary), summary.note


def _floor_w(f: Any, t0_ns: int, t1_ns: int) -> float:
    """The lowest sample power read in [t0, t1] (holes, which no sample read, left out); 0 if none."""
    x0, x1 = f._x(t0_ns), f._x(t1_ns)
    over = (f.edges_s[1:] > x0) & (f.edges_s[:-1] < x1) & ~f.hole
    return float(max(np.min(f.power_w[over]), 0.0)) if np.any(over) else 0.0


def _scaled(f: Any, spans: list[DisciplineSpan]) -> Any:
    """`f` with its segments split at the pins and, in each span, the power above its floor scaled."""
    pins_x = np.array([(s.t0_us - f.origin_us) / 1e6 for s in spans] + [(spans[-1].t1_us - f.origin_us) / 1e6])
    edges = np.union1d(f.edges_s, pins_x[(pins_x > f.edges_s[0]) & (pins_x < f.edges_s[-1])])
    mid = 0.5 * (edges[:-1] + edges[1:])
    seg = np.clip(np.searchsorted(f.edges_s, mid, side="right") - 1, 0, len(f.power_w) - 1)
    span = np.searchsorted(pins_x, mid, side="right") - 1
    scales = np.ones(len(mid))
    floors = np.zeros(len(mid))
    inside = (span >= 0) & (span < len(spans))
    scales[inside] = np.array([s.scale_above_floor for s in spans])[span[inside]]
    floors[inside] = np.array([s.floor_w for s in spans])[span[inside]]
    p = f.power_w[seg]
    return type(f)(f.origin_us, edges, floors + (p - floors) * scales, f.hole[seg])


def next_update_us(pins_us: list[int], now_us: int, period_us: float = COUNTER_PERIOD_S * 1e6) -> int | None:
    """The counter's next update after `now_us`, predicted from the grid of earlier pinned updates.

    The period comes from the last two pins (their spacing over the whole number of updates between
    them), so a counter a little off 100 ms does not walk out of the prediction; None without a pin.
    """
    if not pins_us:
        return None
    last = pins_us[-1]
    if len(pins_us) >= 2:
        d = pins_us[-1] - pins_us[-2]
        n = round(d / period_us)
        if n >= 1 and abs(d / n - period_us) < 0.05 * period_us:
            period_us = d / n
    k = math.floor((now_us - last) / period_us) + 1
    return int(round(last + k * period_us))
