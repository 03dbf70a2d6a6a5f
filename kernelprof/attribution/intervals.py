"""Energy of named intervals from a PowerTrace.

Each buffered sample is taken as the average power over the window that ends at its timestamp
(the gap back to the previous sample, ~20 ms), shifted earlier by the sensor's lag. That gives a
piecewise-constant power function P(t); the energy of [t0, t1] is its exact integral, computed as
F(t1) - F(t0) from one cumulative function F, so adjacent intervals add up to their union to
rounding. The energy counter, read at marks, cross-checks the same function over the marks'
window. The instant field (held until its next reading) and the 1 s average field are reported
beside it for comparison. Where the sampler pinned the counter periodically, the sample power is
scaled per span between pins to the counter (kernelprof.attribution.counter_discipline): energy_j is then the
disciplined figure, and each interval's `discipline` keeps the raw samples' energy beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kernelprof.timeline.clock import Interval, Timeline
from kernelprof.attribution.counter_discipline import CounterDiscipline, build_discipline
from kernelprof.attribution.interval_energy import (Attribution, CounterCheck, Flag, GPUIntervalEnergy,
                                                    IntervalEnergy)
from kernelprof.attribution.power_function import PowerFunction
# Re-exported: these lived here before the split, and callers import them from here.
from kernelprof.attribution.sensor_profile import (DEFAULT_SENSOR_PROFILE, SensorProfile, load_sensor_profile,
                                                   sensor_profile_path)
from kernelprof.gpu.nvml import CLOCK_EVENT_GPU_IDLE, clock_event_names
from kernelprof.sampling.powertrace import GPUTrace, PowerTrace

__all__ = ["SHORT_INTERVAL_MESSAGE", "Attribution", "AttributionConfig", "CounterCheck", "DEFAULT_SENSOR_PROFILE",
           "Flag", "GPUIntervalEnergy", "IntervalEnergy", "PowerFunction", "SensorProfile", "attribute",
           "load_sensor_profile", "sensor_profile_path"]

SHORT_INTERVAL_MESSAGE = "interval shorter than the sensor window; use the steady-state method"


@dataclass(frozen=True)
class AttributionConfig:
    gap_factor: float = 1.5
    # The H100's buffer skips a sample about once a second by itself (336 skips in a 300 s capture,
    # 2026-11-26); the neighbours' mean fills such a hole well in steady load. Flag an interval only
    # when holes cover more than this fraction of it.
    gap_flag_fraction: float = 0.05
    counter_mark_tolerance_s: float = 0.25  # a mark further than this from an edge is not that edge's
    counter_min_periods: float = 5.0  # counter per interval only over at least this many updates
    # ... or this many where both marks are pinned to an update (their counter values are exact at a
    # known instant). measure_kernel's 0.5 s power windows span 4-6 updates by where the marks land,
    # and an H100 GEMM test once got no trial over 5 (2026-11-26).
    counter_min_periods_precise: float = 3.0
    clock_moved_mhz: float = 30.0
    state_lookback_s: float = 0.1  # the state reading before t0 still describes the interval
    # Scale the samples per span between pinned counter readings (kernelprof.attribution.counter_discipline).
    # "auto": when the sampler read the counter periodically (SamplerConfig.counter_interval_s > 0;
    # older recordings did not); "always": with whatever pinned marks the trace has; "off".
    counter_discipline: str = "auto"


class _GPUModel:
    """One GPU's trace turned into the functions attribution integrates."""

    def __init__(self, g: GPUTrace, profile: SensorProfile, cfg: AttributionConfig,
                 periodic_counter: bool = False) -> None:
        self.g, self.profile, self.cfg = g, profile, cfg
        self.periodic_counter = periodic_counter  # the sampler pinned the counter at a cadence
        period = g.sample_period_s(profile.samples_period_s)
        self.sample_period_s = period
        self.samples = PowerFunction.from_windows(
            g.samples_t_us, g.samples_w, period_s=period, lag_s=profile.samples_lag_s,
            gap_factor=cfg.gap_factor) if g.sources.samples and len(g.samples_t_us) else None
        self.discipline, self.discipline_note = self._discipline(g, cfg)
        fperiod = (float(np.median(np.diff(g.instant_t_us))) / 1e6 if len(g.instant_t_us) > 3
                   else profile.field_period_s)
        self.instant = PowerFunction.from_windows(
            g.instant_t_us, g.instant_w, period_s=fperiod, gap_factor=cfg.gap_factor * 2,
            backward=False) if len(g.instant_t_us) else None

    def interval(self, iv: Interval) -> GPUIntervalEnergy:
        g = self.g
        t0, t1 = iv.t0_ns, iv.t1_ns
        dur = max((t1 - t0) / 1e9, 0.0)
        flags: list[Flag] = []
        energy = inst = disc = None
        method, n, coverage = "none", 0, 0.0
        if self.instant is not None:
            inst = self.instant.energy_j(t0, t1)
        if self.samples is not None:
            f = self.samples
            energy, method, n = f.energy_j(t0, t1), "nvml_samples", f.n_readings(t0, t1)
            if self.discipline is not None:
                disc = self.discipline.interval(t0, t1)
                energy = disc.energy_j
            covered, hole = f.covered_s(t0, t1), f.hole_s(t0, t1)
            coverage = (covered - hole) / dur if dur > 0 else 0.0
            if hole > self.cfg.gap_flag_fraction * dur:
                flags.append(Flag("sample_gap", f"{hole * 1e3:.0f} ms of {dur * 1e3:.0f} ms had no buffered "
                                                f"sample (filled with the neighbouring samples' mean)"))
            if covered < dur * 0.999:
                flags.append(Flag("outside_trace", f"only {covered:.3f} s of {dur:.3f} s lie inside the sampled span"))
            if dur < 2 * self.sample_period_s:
                flags.append(Flag("short_interval", SHORT_INTERVAL_MESSAGE))
        elif self.instant is not None:
            energy, method, n = inst, "instant_field", self.instant.n_readings(t0, t1)
            coverage = self.instant.covered_s(t0, t1) / dur if dur > 0 else 0.0
            flags.append(Flag("fallback_method", "no buffered power samples on this GPU; energy integrates the "
                                                 "instant power field (~100 ms updates, can be far off for bursty loads)"))
        lost = [x for x in g.gaps if x.source == "samples" and x.kind == "drain_late"
                and x.t1_us * 1000 > t0 and x.t0_us * 1000 < t1]
        if lost:
            flags.append(Flag("samples_lost", f"{sum(x.missing_samples for x in lost):.0f} buffered samples were "
                                              "lost (the sampler drained late)"))
        in_avg = (g.average_t_us * 1000 >= t0) & (g.average_t_us * 1000 <= t1)
        avg_w = float(np.mean(g.average_w[in_avg])) if np.any(in_avg) else None
        if method == "none" and avg_w is not None:
            energy, method = avg_w * dur, "average_field"
            flags.append(Flag("fallback_method", "only NVML's 1 s average power field was available: "
                                                 "energy = its mean x time, smeared over ~1 s"))
        flags += self._state_flags(t0, t1)
        counter, note = self.counter_check(t0, t1)
        mean_w = energy / dur if energy is not None and dur > 0 else None
        return GPUIntervalEnergy(g.gpu, g.uuid, energy, mean_w, method, n, coverage, inst, avg_w,
                                 counter, note, tuple(flags), disc, None if disc is not None else self.discipline_note)

    def _discipline(self, g: GPUTrace, cfg: AttributionConfig) -> tuple[CounterDiscipline | None, str]:
        if cfg.counter_discipline not in ("auto", "always", "off"):
            raise ValueError(f"counter_discipline must be 'auto', 'always' or 'off', got {cfg.counter_discipline!r}")
        if self.samples is None:
            return None, "no buffered samples: nothing to discipline"
        if cfg.counter_discipline == "off":
            return None, "counter discipline off (AttributionConfig): raw samples"
        if cfg.counter_discipline == "auto" and not self.periodic_counter:
            return None, ("recorded without periodic energy-counter reads (SamplerConfig.counter_interval_s): raw "
                          "samples; AttributionConfig(counter_discipline='always') uses the marks it has")
        if not g.sources.counter:
            return None, "this GPU has no energy counter: raw samples"
        return build_discipline(self.samples, g)

    def _state_flags(self, t0: int, t1: int) -> list[Flag]:
        g, cfg = self.g, self.cfg
        flags = []
        lo = t0 - int(cfg.state_lookback_s * 1e9)
        sel = (g.state_t_us * 1000 >= lo) & (g.state_t_us * 1000 <= t1)
        reasons = g.clock_event_reasons[sel]
        reasons = reasons[reasons >= 0]
        mask = int(np.bitwise_or.reduce(reasons)) if len(reasons) else 0
        mask &= ~CLOCK_EVENT_GPU_IDLE
        if mask:
            share = float(np.mean((reasons & ~CLOCK_EVENT_GPU_IDLE) != 0))
            flags.append(Flag("throttled", f"clock-event reasons {', '.join(clock_event_names(mask))} "
                                           f"set in {share:.0%} of readings"))
        sm = g.sm_clock_mhz[sel]
        sm = sm[np.isfinite(sm)]
        if len(sm) and np.ptp(sm) > cfg.clock_moved_mhz:
            flags.append(Flag("clocks_moved", f"SM clock moved between {sm.min():.0f} and {sm.max():.0f} MHz"))
        psel = (g.process_t_us * 1000 >= t0 - 1_000_000_000) & (g.process_t_us * 1000 <= t1)
        others = g.other_processes[psel]
        if len(others) and others.max() > 0:
            flags.append(Flag("other_processes", f"up to {int(others.max())} other compute process(es) "
                                                 "on the GPU: their energy is in these joules"))
        return flags

    def counter_check(self, t0: int, t1: int) -> tuple[CounterCheck | None, str | None]:
        g, cfg = self.g, self.cfg
        if not g.sources.counter or len(g.counter_t_us) < 2:
            return None, "no energy-counter marks" if g.sources.counter else "this GPU has no energy counter"
        m = g.counter_t_us * 1000
        tol = cfg.counter_mark_tolerance_s * 1e9

        def nearest(t: int) -> int | None:
            near = np.nonzero(np.abs(m - t) <= tol)[0]
            if not len(near):
                return None
            precise = near[g.counter_precise[near]]
            pool = precise if len(precise) else near
            return int(pool[np.argmin(np.abs(m[pool] - t))])

        i0, i1 = nearest(t0), nearest(t1)
        if i0 is None or i1 is None or i1 <= i0:
            return None, "no counter marks at both edges of the interval (request them with counter marks)"
        window_s = (m[i1] - m[i0]) / 1e9
        precise = bool(g.counter_precise[i0] and g.counter_precise[i1])
        need = cfg.counter_min_periods_precise if precise else cfg.counter_min_periods
        # Updates counted to the nearest whole one: five 100 ms updates measure 0.4999 s on the host.
        if round(window_s / self.profile.counter_period_s) < need:
            return None, (f"counter window {window_s:.2f} s is under {need:.0f} counter "
                          f"updates ({self.profile.counter_period_s * 1e3:.0f} ms each)")
        ce = float(g.counter_j[i1] - g.counter_j[i0])
        se = self.samples.energy_j(int(m[i0]), int(m[i1])) if self.samples is not None else None
        diff = None if se is None else se - ce
        pct = None if diff is None or ce == 0 else 100.0 * diff / ce
        return CounterCheck(int(m[i0]), int(m[i1]), ce, se, diff, pct, precise), None


def _combine(iv: Interval, per_gpu: list[GPUIntervalEnergy], extra: list[Flag]) -> IntervalEnergy:
    energies = [g.energy_j for g in per_gpu]
    energy = None if any(e is None for e in energies) else float(sum(energies))
    dur = (iv.t1_ns - iv.t0_ns) / 1e9
    methods = sorted({g.method for g in per_gpu})
    seen: set[tuple[str, str]] = set()
    flags = []
    for f in [*extra, *(f for g in per_gpu for f in g.flags)]:
        if (f.code, f.message) not in seen:
            seen.add((f.code, f.message))
            flags.append(f)
    return IntervalEnergy(iv.name, iv.path, iv.depth, iv.kind, iv.t0_ns, iv.t1_ns, dur, energy,
                          None if energy is None or dur <= 0 else energy / dur, "+".join(methods),
                          tuple(per_gpu), tuple(flags))


def attribute(trace: PowerTrace, intervals: Timeline | Sequence[Interval], *, window: Interval | None = None,
              profiles: Sequence[SensorProfile] | SensorProfile | None = None,
              config: AttributionConfig | None = None, driver: str | None = None) -> Attribution:
    """Energy of every interval (and of `window`, default the trace's span) on every GPU of `trace`.

    `profiles`: one SensorProfile per GPU (trace order) or one for all; default: the cached
    profile for each GPU's UUID and driver, else SENSOR_FACTS defaults (the result says which).
    """
    cfg = config or AttributionConfig()
    ivs = list(intervals.intervals if isinstance(intervals, Timeline) else intervals)
    if profiles is None:
        profs = [load_sensor_profile(g.uuid, driver, g.name) for g in trace.gpus]
    elif isinstance(profiles, SensorProfile):
        profs = [profiles] * len(trace.gpus)
    else:
        profs = list(profiles)
    periodic = float(trace.config.get("counter_interval_s") or 0.0) > 0  # absent in older recordings
    models = [_GPUModel(g, p, cfg, periodic) for g, p in zip(trace.gpus, profs)]
    extra = []
    if trace.provenance == "synthetic":
        extra.append(Flag("synthetic_trace", "made-up power trace (a test of the math), not a measurement"))
    if window is None:
        window = Interval("window", trace.start_t_us * 1000, trace.stop_t_us * 1000, kind="window")
    notes = []
    for g, p in zip(trace.gpus, profs):
        if p.source != "measured":
            notes.append(f"GPU {g.gpu}: sensor lag and window: {p.note}")
    for m in models:
        notes.append(f"GPU {m.g.gpu}: counter discipline: {m.discipline_note}")
    return Attribution(
        window=_combine(window, [m.interval(window) for m in models], extra),
        intervals=tuple(_combine(iv, [m.interval(iv) for m in models], extra) for iv in ivs),
        sensor_profiles=tuple(profs), provenance=trace.provenance, notes=tuple(notes),
        disciplines=tuple(m.discipline.summary if m.discipline is not None else None for m in models))
