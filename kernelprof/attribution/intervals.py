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

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from kernelprof import cache
from kernelprof.timeline.clock import Interval, Timeline
from kernelprof.attribution.counter_discipline import CounterDiscipline, DisciplinedEnergy, DisciplineSummary, build_discipline
from kernelprof.gpu.nvml import CLOCK_EVENT_GPU_IDLE, clock_event_names
from kernelprof.sampling.powertrace import GPUTrace, PowerTrace

SHORT_INTERVAL_MESSAGE = "interval shorter than the sensor window; use the steady-state method"


@dataclass(frozen=True)
class SensorProfile:
    """What attribution assumes about a GPU's power sources (see `kernelprof sensor`)."""

    samples_period_s: float = 0.020
    samples_window_s: float = 0.020
    # 3.6 ms: what `kernelprof sensor` measured on an H100 SXM (traces/sensor-h100.json); with no
    # lag, a phase of ~20 ms reads part of its neighbour's power (the phase fit moved 1-2%).
    samples_lag_s: float = 0.0036
    field_period_s: float = 0.100
    counter_period_s: float = 0.100
    source: str = "default"  # "measured" (by kernelprof sensor on this GPU), "shipped" (another card of its model) or "default"
    note: str = ("built-in default (kernelprof sensor on one H100 80GB HBM3, driver 580.159.04), not measured on "
                 "this GPU; run `kernelprof sensor` (about 20 s) to measure it")
    gpu_uuid: str | None = None
    driver: str | None = None
    created: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SensorProfile":
        """From to_json's dict; unknown keys (a newer file) are ignored."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


DEFAULT_SENSOR_PROFILE = SensorProfile()


def sensor_profile_path(uuid: str | None, driver: str | None):
    return cache.cache_path("sensor", uuid, driver)


def load_sensor_profile(uuid: str | None, driver: str | None, gpu_name: str | None = None) -> SensorProfile:
    """The profile `kernelprof sensor` saved for this GPU and driver; else the one shipped for its
    model (kernelprof.attribution.shipped_profiles); else the default. Each says which it is."""
    doc = None
    if uuid and driver:
        doc = cache.read_cached(sensor_profile_path(uuid, driver))
    elif uuid:  # driver unknown (a saved run without it): the newest profile of this GPU
        stem = sensor_profile_path(uuid, "x").name[:-len("-x.json")]
        found = sorted(cache.cache_dir().glob(stem + "-*.json"), key=lambda p: p.stat().st_mtime)
        doc = cache.read_cached(found[-1]) if found else None
    if doc and isinstance(doc.get("profile"), dict):
        try:
            return SensorProfile.from_json(doc["profile"])
        except TypeError:
            pass
    from kernelprof.attribution.shipped_profiles import shipped_profile

    shipped = shipped_profile(gpu_name)
    if shipped is not None:
        try:
            prof = SensorProfile.from_json(shipped["profile"])
        except TypeError:
            prof = None
        if prof is not None:
            return replace(prof, source="shipped", gpu_uuid=uuid, driver=driver,
                           note=f"another card's profile ({shipped.get('from', 'shipped with kernelprof')}), not "
                                "measured on this GPU; run `kernelprof sensor` (about 20 s) to measure it")
    return SensorProfile(gpu_uuid=uuid, driver=driver)


# ---------------------------------------------------------------------------------------------
# The power function

@dataclass(frozen=True, eq=False)
class PowerFunction:
    """Piecewise-constant power: `power_w[i]` on [edges_s[i], edges_s[i+1]) (s after origin_us).

    `hole[i]` marks a segment no reading covered (a gap), filled with its neighbours' mean.
    """

    origin_us: int
    edges_s: np.ndarray
    power_w: np.ndarray
    hole: np.ndarray
    cum_j: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        cum = np.concatenate([[0.0], np.cumsum(self.power_w * np.diff(self.edges_s))])
        object.__setattr__(self, "cum_j", cum)

    @classmethod
    def from_windows(cls, t_us: np.ndarray, power_w: np.ndarray, *, period_s: float, lag_s: float = 0.0,
                     gap_factor: float = 1.5, origin_us: int | None = None,
                     backward: bool = True) -> "PowerFunction | None":
        """Readings as window averages ending at their stamps (`backward`) or held until the next one.

        A spacing over `gap_factor` periods becomes: the reading's own window of one period, and a
        hole between it and the previous reading's window.
        """
        t_us = np.asarray(t_us, np.int64)
        w = np.asarray(power_w, np.float64)
        if len(t_us) == 0:
            return None
        origin = int(t_us[0]) if origin_us is None else int(origin_us)
        t = (t_us - origin) / 1e6 - lag_s
        d = np.diff(t)
        gap = d > gap_factor * period_s
        if backward:  # window of sample i is (t[i-1], t[i]], or one period if a gap precedes it
            starts = np.empty(len(t))
            starts[0] = t[0] - period_s
            starts[1:] = np.where(gap, t[1:] - period_s, t[:-1])
            ends = t
            h0, h1 = t[:-1][gap], (t[1:] - period_s)[gap]
        else:  # reading i holds on [t[i], t[i+1]), or one period if a gap follows it
            starts = t
            ends = np.empty(len(t))
            ends[-1] = t[-1] + period_s
            ends[:-1] = np.where(gap, t[:-1] + period_s, t[1:])
            h0, h1 = (t[:-1] + period_s)[gap], t[1:][gap]
        hole_w = 0.5 * (w[:-1][gap] + w[1:][gap])
        s = np.concatenate([starts, h0])
        e = np.concatenate([ends, h1])
        p = np.concatenate([w, hole_w])
        hole = np.concatenate([np.zeros(len(t), bool), np.ones(len(h0), bool)])
        order = np.argsort(s, kind="stable")
        s, e, p, hole = s[order], e[order], p[order], hole[order]
        edges = np.concatenate([s, e[-1:]])
        return cls(origin, edges, p, hole)

    def _x(self, t_ns: int) -> float:
        return (int(t_ns) - self.origin_us * 1000) / 1e9

    def _cum(self, x: float) -> float:
        e = self.edges_s
        x = min(max(x, e[0]), e[-1])
        k = min(max(int(np.searchsorted(e, x, side="right")) - 1, 0), len(self.power_w) - 1)
        return float(self.cum_j[k] + self.power_w[k] * (x - e[k]))

    def energy_j(self, t0_ns: int, t1_ns: int) -> float:
        """Exact integral over [t0, t1] (the part inside the function's span)."""
        return self._cum(self._x(t1_ns)) - self._cum(self._x(t0_ns))

    def covered_s(self, t0_ns: int, t1_ns: int) -> float:
        x0, x1 = self._x(t0_ns), self._x(t1_ns)
        return max(0.0, min(x1, self.edges_s[-1]) - max(x0, self.edges_s[0]))

    def hole_s(self, t0_ns: int, t1_ns: int) -> float:
        x0, x1 = self._x(t0_ns), self._x(t1_ns)
        idx = np.nonzero(self.hole)[0]
        a, b = self.edges_s[idx], self.edges_s[idx + 1]
        return float(np.sum(np.clip(np.minimum(b, x1) - np.maximum(a, x0), 0.0, None)))

    def n_readings(self, t0_ns: int, t1_ns: int) -> int:
        """Readings whose windows overlap [t0, t1]."""
        x0, x1 = self._x(t0_ns), self._x(t1_ns)
        overlap = (self.edges_s[1:] > x0) & (self.edges_s[:-1] < x1) & ~self.hole
        return int(np.sum(overlap))


# ---------------------------------------------------------------------------------------------
# Results

@dataclass(frozen=True)
class Flag:
    code: str  # sample_gap | samples_lost | short_interval | outside_trace | throttled | clocks_moved |
    #            other_processes | fallback_method | synthetic_trace
    message: str


@dataclass(frozen=True)
class CounterCheck:
    """The energy counter between two marks, and the samples integrated over the same window."""

    t0_ns: int
    t1_ns: int
    counter_energy_j: float
    samples_energy_j: float | None
    diff_j: float | None  # samples - counter
    diff_pct: float | None  # of the counter
    precise: bool  # both marks pinned to a counter update (read until it stepped)

    @property
    def window_s(self) -> float:
        return (self.t1_ns - self.t0_ns) / 1e9


@dataclass(frozen=True)
class GPUIntervalEnergy:
    gpu: int
    uuid: str | None
    energy_j: float | None
    mean_power_w: float | None
    method: str  # nvml_samples | instant_field | average_field | none
    n_samples: int
    coverage: float  # fraction of the interval inside the readings' span, holes excluded
    energy_instant_j: float | None
    mean_average_field_w: float | None
    counter: CounterCheck | None
    counter_note: str | None
    flags: tuple[Flag, ...]
    # energy_j is the samples disciplined by the counter where `discipline` is set (its raw_energy_j
    # keeps the samples' own figure); None: raw samples, and discipline_note says why
    discipline: DisciplinedEnergy | None = None
    discipline_note: str | None = None

    @property
    def samples_energy_j(self) -> float | None:
        return self.discipline.raw_energy_j if self.discipline is not None else self.energy_j


@dataclass(frozen=True)
class IntervalEnergy:
    """One interval's energy, summed over GPUs, with each GPU's numbers and the flags."""

    name: str
    path: str
    depth: int
    kind: str
    t0_ns: int
    t1_ns: int
    time_s: float
    energy_j: float | None
    mean_power_w: float | None
    method: str
    gpus: tuple[GPUIntervalEnergy, ...]
    flags: tuple[Flag, ...]

    @property
    def counter_energy_j(self) -> float | None:
        checks = [g.counter for g in self.gpus]
        return None if any(c is None for c in checks) else sum(c.counter_energy_j for c in checks)

    def flag_codes(self) -> list[str]:
        return [f.code for f in self.flags]

    @property
    def samples_energy_j(self) -> float | None:
        """The raw buffered samples' energy, before the counter discipline."""
        raw = [g.samples_energy_j for g in self.gpus]
        return None if any(e is None for e in raw) else float(sum(raw))


@dataclass(frozen=True)
class Attribution:
    window: IntervalEnergy
    intervals: tuple[IntervalEnergy, ...]
    sensor_profiles: tuple[SensorProfile, ...]  # one per GPU, in trace order
    provenance: str
    notes: tuple[str, ...]
    disciplines: tuple[DisciplineSummary | None, ...] = ()  # one per GPU; None: raw samples

    def by_path(self, path: str) -> IntervalEnergy:
        for i in self.intervals:
            if i.path == path:
                return i
        raise KeyError(path)


# ---------------------------------------------------------------------------------------------
# Attribution

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
