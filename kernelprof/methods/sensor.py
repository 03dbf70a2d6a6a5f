"""Sensor characterization: how each NVML power source behaves on this GPU (after Yang, Adamek and
Armour, SC'24, "Accurate and convenient energy measurements for GPUs").

`characterize()` drives square-wave loads (bf16 matmul bursts with host sleeps between) and a load
step while a PowerSampler records, then `analyze()` turns the recording into a `SensorReport`:
per source its update period, averaging window (width of the response to a 5 ms burst), lag
behind a load step, the fraction of time it covers and its call latency; the two idle powers;
and the agreement of each source with the energy counter at several duty cycles. The analysis
functions take plain arrays, so recorded runs are analysed on a machine without a GPU.
"""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from kernelprof.attribution.intervals import PowerFunction, SensorProfile, sensor_profile_path
from kernelprof.timeline.clock import Interval, Timeline
from kernelprof.sampling.powertrace import GPUTrace, PowerTrace

DUTY_CYCLES_MS = ((None, None), (50, 50), (10, 30), (5, 95))  # (on, off); None: continuous


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


@dataclass(frozen=True)
class SourceReport:
    name: str  # samples | instant | average | counter
    available: bool
    period: PeriodStats
    window_s: float | None
    window_method: str
    lag_s: float | None
    t50_after_step_s: float | None
    coverage: float | None  # fraction of time the readings' windows cover
    call_latency_us: float | None


@dataclass(frozen=True)
class SensorReport:
    gpu: int
    uuid: str | None
    name: str
    driver: str | None
    created: str
    duration_s: float
    sources: tuple[SourceReport, ...]
    idle_before_work_w: float | None
    idle_before_work_kind: str  # "deep" or "not deep", with why
    idle_after_work_w: float | None
    agreements: tuple[Agreement, ...]
    lost_samples: float
    notes: tuple[str, ...] = ()

    def source(self, name: str) -> SourceReport:
        return next(s for s in self.sources if s.name == name)

    def to_profile(self) -> SensorProfile:
        s = self.source("samples")
        f = self.source("instant")
        c = self.source("counter")
        lag = s.lag_s if s.lag_s is not None else 0.0
        return SensorProfile(
            samples_period_s=(s.period.median_ms or 20.0) / 1e3,
            samples_window_s=s.window_s or (s.period.median_ms or 20.0) / 1e3,
            samples_lag_s=float(min(max(lag, 0.0), 0.1)),  # a negative lag is noise in the step itself
            field_period_s=(f.period.median_ms or 100.0) / 1e3,
            counter_period_s=(c.period.median_ms or 100.0) / 1e3,
            source="measured", note=f"measured by `kernelprof sensor` on {self.created}",
            gpu_uuid=self.uuid, driver=self.driver, created=self.created)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def analyze(trace: PowerTrace, timeline: Timeline, *, counter_reads: tuple[np.ndarray, np.ndarray] | None = None,
            driver: str | None = None, gpu_index: int = 0, duration_s: float | None = None) -> SensorReport:
    """Turn a characterization recording into a report.

    The timeline holds segments "idle_before", "step" (continuous load), "idle_after" and
    "duty_<on>_<off>" (with "burst" intervals nested in them). `counter_reads` are back-to-back
    counter reads (epoch ns, J) for the counter's own period.
    """
    g = trace.gpus[gpu_index]
    seg = {i.path: i for i in timeline.intervals if i.depth == 0}
    bursts_by_seg: dict[str, list[tuple[int, int]]] = {}
    for i in timeline.intervals:
        if i.kind == "burst" and i.parent:
            bursts_by_seg.setdefault(i.parent, []).append((i.t0_ns, i.t1_ns))
    notes: list[str] = []

    def mean_samples(iv: Interval | None, skip_s: float = 0.0) -> float | None:
        if iv is None:
            return None
        sel = (g.samples_t_us * 1000 >= iv.t0_ns + skip_s * 1e9) & (g.samples_t_us * 1000 <= iv.t1_ns)
        return float(np.mean(g.samples_w[sel])) if np.any(sel) else None

    idle_before = mean_samples(seg.get("idle_before"), 0.0)
    idle_after = mean_samples(seg.get("idle_after"), 0.5)
    if idle_before is None or idle_after is None:
        kind = "unknown (no idle segment)"
    elif idle_before < 0.85 * idle_after:
        kind = f"deep: {idle_before:.0f} W before work vs {idle_after:.0f} W right after it"
    else:
        kind = ("not deep: the GPU had worked recently (or has no deeper idle state); "
                "wait minutes without GPU work before `kernelprof sensor` to see deep idle")

    # burst responses: the shortest bursts with jittered gaps
    short = min(bursts_by_seg, key=lambda k: np.median([b - a for a, b in bursts_by_seg[k]]), default=None)
    bursts = bursts_by_seg.get(short, [])
    resp = {
        "samples": burst_response(g.samples_t_us, g.samples_w, bursts, baseline_w=None),
        "instant": burst_response(g.instant_t_us, g.instant_w, bursts, baseline_w=None,
                                  span_s=(-0.02, 0.12), bin_s=0.005),
    }
    step = seg.get("step")
    sources = []
    lat = g.call_latency_us
    for name, t_us, w, nominal_window in (("samples", g.samples_t_us, g.samples_w, None),
                                          ("instant", g.instant_t_us, g.instant_w, None),
                                          ("average", g.average_t_us, g.average_w, 1.0)):
        avail = bool(getattr(g.sources, name)) and len(t_us) > 0
        per = update_period(t_us)
        r = resp.get(name)
        if nominal_window is not None:
            window, wmethod = nominal_window, "documented 1 s moving average (not measured)"
        elif r is not None and r.width_s is not None and r.n_readings >= 20:
            window, wmethod = r.width_s, f"FWHM of the mean response to {r.n_bursts} bursts of {r.burst_s * 1e3:.1f} ms"
        elif name == "samples":
            window, wmethod = (per.median_ms / 1e3 if per.median_ms else None), "assumed = update period (no burst data)"
        else:
            window, wmethod = None, "not measured (too few readings after the bursts)"
        sr = step_response(t_us, w, step.t0_ns, step.t1_ns, window_s=window or 0.0) if step and avail else None
        coverage = None
        if per.median_ms and window:
            coverage = float(min(1.0, window / (per.median_ms / 1e3)))
        lat_key = {"samples": "samples", "instant": "fields", "average": "fields"}[name]
        sources.append(SourceReport(name, avail, per, window, wmethod, sr.lag_s if sr else None,
                                    sr.t50_after_step_s if sr else None, coverage, lat.get(lat_key)))
    cper = counter_update_period(*counter_reads) if counter_reads is not None else PeriodStats(None, None, None, 0)
    sources.append(SourceReport("counter", bool(g.sources.counter), cper, None, "integral (no window)", None, None,
                                1.0 if g.sources.counter else None, lat.get("counter")))
    lag = next(s.lag_s for s in sources if s.name == "samples") or 0.0
    agreements = []
    for path, iv in seg.items():
        if path == "step" or path.startswith("duty_"):
            b = bursts_by_seg.get(path, [])
            duty = None
            if b:
                busy = sum(e - s for s, e in b)
                duty = busy / max(iv.t1_ns - iv.t0_ns, 1)
            elif path == "step":
                duty = 1.0
            label = "continuous" if path == "step" else path.replace("duty_", "").replace("_", "/") + " ms"
            a = agreement(g, iv.t0_ns, iv.t1_ns + 300_000_000, label, duty, lag_s=max(lag, 0.0))
            if a is not None:
                agreements.append(a)
    if any(s.name == "samples" and s.lag_s is not None and s.lag_s < 0 for s in sources):
        notes.append("the samples' step response led the step: lag clipped to 0 in the profile")
    return SensorReport(
        gpu=g.gpu, uuid=g.uuid, name=g.name, driver=driver,
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        duration_s=duration_s if duration_s is not None else trace.duration_s, sources=tuple(sources),
        idle_before_work_w=idle_before, idle_before_work_kind=kind, idle_after_work_w=idle_after,
        agreements=tuple(agreements), lost_samples=g.lost_samples(), notes=tuple(notes))


# ---------------------------------------------------------------------------------------------
# Running it on a GPU

class _Load:
    """bf16 matmul bursts of a requested length, timed with CUDA events."""

    def __init__(self, device: int, n: int = 4096) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.a = torch.randn(n, n, device=f"cuda:{device}", dtype=torch.bfloat16)
        self.b = torch.randn(n, n, device=f"cuda:{device}", dtype=torch.bfloat16)
        self.c = torch.empty_like(self.a)
        for _ in range(20):  # cuBLAS heuristics, clocks
            torch.matmul(self.a, self.b, out=self.c)
        torch.cuda.synchronize(device)
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(50):
            torch.matmul(self.a, self.b, out=self.c)
        e.record()
        e.synchronize()
        self.ms_per_matmul = s.elapsed_time(e) / 50

    def run(self, n: int) -> None:
        for _ in range(n):
            self.torch.matmul(self.a, self.b, out=self.c)

    def n_for_ms(self, ms: float) -> int:
        return max(1, round(ms / self.ms_per_matmul))


def run_square_wave(clock, load: _Load, on_ms: float, off_ms: float | tuple[float, float], duration_s: float,
                    parent: str, rng: np.random.Generator | None = None) -> None:
    """Bursts of `on_ms` of matmuls, each followed by a host sleep (a range draws a random one)."""
    torch = load.torch
    n = load.n_for_ms(on_ms)
    end = time.perf_counter() + duration_s
    while time.perf_counter() < end:
        a = clock.event()
        load.run(n)
        b = clock.event()
        clock.add("burst", f"{parent}/burst", 1, "burst", a, b)
        b.synchronize()
        off = off_ms if not isinstance(off_ms, tuple) else float(rng.uniform(*off_ms))
        time.sleep(off / 1e3)
    torch.cuda.synchronize(load.device)


def run_continuous(clock, load: _Load, duration_s: float) -> None:
    chunk = load.n_for_ms(10.0)
    end = time.perf_counter() + duration_s
    while time.perf_counter() < end:
        load.run(chunk)
        load.torch.cuda.synchronize(load.device)  # keep the host with the GPU so marks mean "now"


def characterize(gpu: int = 0, *, segment_s: float = 3.0, progress: Callable[[str], None] | None = None,
                 save: bool = True) -> tuple[SensorReport, PowerTrace, Timeline]:
    """Measure the power sources of CUDA device `gpu` (~25 s) and save its sensor profile."""
    from kernelprof.timeline.clock import EventClock
    from kernelprof.gpu.devices import gpu_facts, require_gpu
    from kernelprof.errors import NoGPUError
    from kernelprof.sampling.core import SamplerConfig
    from kernelprof.sampling.runners import PowerSampler
    from kernelprof.gpu import nvml

    require_gpu("kernelprof sensor")
    say = progress or (lambda s: None)
    facts = gpu_facts(gpu)
    if facts.nvml_index is None:
        raise NoGPUError(f"CUDA device {gpu} is not visible to NVML, so its power cannot be read")
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)
    cfg = SamplerConfig(field_interval_s=0.01)  # fields every 10 ms to time their 100 ms updates finely
    sampler = PowerSampler([facts.nvml_index], config=cfg).start()
    clock = EventClock(gpu)
    torch = clock.torch
    torch.cuda.set_device(gpu)
    clock.anchor()

    def segment(name: str, body: Callable[[], None], mark: bool = False) -> None:
        say(name)
        a = clock.event()
        if mark:
            body_head, body_tail = body
            body_head()
            sampler.mark_counter(precise=True)
            body_tail()
            sampler.mark_counter(precise=True)
        else:
            body()
        torch.cuda.synchronize(gpu)
        b = clock.event()
        clock.add(name, name, 0, "segment", a, b)
        sampler.check()

    segment("idle_before", lambda: time.sleep(2.0))
    load = _Load(gpu)
    time.sleep(1.0)  # let the warm-up's power fall back before the step
    segment("step", (lambda: run_continuous(clock, load, 0.8), lambda: run_continuous(clock, load, 1.6)), mark=True)
    segment("idle_after", lambda: time.sleep(2.5))
    say("counter period")
    h = nvml.handle(facts.nvml_index)
    reads_t, reads_e = [], []
    end = time.perf_counter() + 0.6
    while time.perf_counter() < end:  # back-to-back reads: ~4 ms each, so this is not a spin
        reads_e.append(nvml.energy_counter_j(h))
        reads_t.append(time.time_ns())
    for on, off in DUTY_CYCLES_MS[1:]:
        off_arg = (off * 0.85, off * 1.15) if on == 5 else off  # jitter the short bursts so samples see all phases
        name = f"duty_{on}_{off}"
        segment(name, (lambda on=on, off_arg=off_arg, name=name: run_square_wave(clock, load, on, off_arg, 0.4, name, rng),
                       lambda on=on, off_arg=off_arg, name=name: run_square_wave(clock, load, on, off_arg, segment_s,
                                                                                  name, rng)), mark=True)
        time.sleep(0.3)
    clock.anchor()
    trace = sampler.stop()
    timeline = clock.fit()
    report = analyze(trace, timeline, counter_reads=(np.array(reads_t), np.array(reads_e)),
                     driver=facts.driver_version, duration_s=time.perf_counter() - t_start)
    if save:
        save_profile_for(report)
    return report, trace, timeline


def save_profile_for(report: SensorReport):
    from kernelprof.cache import write_cached
    from kernelprof.outputs.runfile import to_jsonable

    path = sensor_profile_path(report.uuid, report.driver)
    write_cached(path, {"profile": report.to_profile().to_json(), "report": to_jsonable(report)})
    return path
