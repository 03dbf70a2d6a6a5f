"""A sensor characterization recording turned into a `SensorReport` (per source: update period,
averaging window, lag, coverage, call latency; the two idle powers; agreement with the counter at
several duty cycles) and the `SensorProfile` attribution uses. Takes a recorded trace and
timeline, so a run is analysed on a machine without a GPU.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kernelprof.attribution.sensor_profile import SensorProfile
from kernelprof.methods.sensor_response import (Agreement, PeriodStats, agreement, burst_response,
                                                counter_update_period, step_response, update_period)
from kernelprof.timeline.clock import Interval, Timeline
from kernelprof.sampling.powertrace import PowerTrace


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
