"""How a kernel measurement's records become joules per call (the records: kernelprof.methods.kernel_measurement).

`measure_kernel` (kernelprof.methods.steady_state) runs the GPU and hands this module plain numbers: CUDA event
times at segment edges, calls per segment, the idle stretch before the run, and the sampler's
PowerTrace. Everything here is arithmetic on those numbers (no GPU), so saved or synthetic runs
can be re-analysed and tested on a CPU.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Sequence

import numpy as np

from kernelprof.attribution.intervals import AttributionConfig, Flag, attribute
from kernelprof.timeline.clock import Interval
from kernelprof.errors import MeasurementError
from kernelprof.sampling.powertrace import PowerTrace
# Re-exported: the records lived here before the split, and callers import them from here.
from kernelprof.methods.kernel_measurement import STATES, KernelMeasurement, LaunchFacts, MeasureConfig, RunRecord
from kernelprof.methods.settled import (Batch, CallClock, batch_edges_ns, counter_batches, mean_ci, mser_cut, ratio_over,
                                        sample_batches, trend)

__all__ = ["STATES", "KernelMeasurement", "LaunchFacts", "MeasureConfig", "RunRecord", "analyze_bursts",
           "analyze_sustained", "settle_point", "stationary_from"]

# Raw samples: the counter gives the figure, so the samples stay an independent cross-check.
_RAW = AttributionConfig(counter_discipline="off")
_LEAD_S = 0.04  # two 20 ms sample windows before a burst's first launch


def _segments(rec: RunRecord) -> tuple[np.ndarray, list[Interval]]:
    edges = rec.edges_ns()
    segs = [Interval(f"seg{j}", int(edges[j]), int(edges[j + 1]), kind="window") for j in range(len(rec.segment_calls))]
    return edges, segs


def _state_mean(trace: PowerTrace, name: str, t0_ns: int, t1_ns: int) -> float | None:
    if not trace.gpus:
        return None
    g = trace.gpus[0]
    t = g.state_t_us.astype(np.int64) * 1000
    v = getattr(g, name)[(t >= t0_ns) & (t <= t1_ns)]
    v = v[np.isfinite(v)]
    return float(np.mean(v)) if len(v) else None


def _idle(att_by: dict[str, Any]) -> float | None:
    idle = att_by.get("idle")
    return idle.mean_power_w if idle is not None else None


def settle_point(edges_ns: np.ndarray, seg_energy_per_call: np.ndarray, clock_t_ns: np.ndarray,
                 clock_mhz: np.ndarray, min_drop_s: float, tolerance_pct: float = 0.5) -> int:
    """Index of the first segment edge past the transient (energy per call and SM clock both settled)."""
    t_start = edges_ns[0] + min_drop_s * 1e9
    # MSER-5: on half-second means (5 segments of 100 ms; 5 clock readings at 10 Hz).
    cut_e = mser_cut(seg_energy_per_call, batch=5)
    t_cut = max(t_start, float(edges_ns[cut_e]))
    if len(clock_mhz) >= 20:
        t_cut = max(t_cut, float(clock_t_ns[mser_cut(clock_mhz, batch=5)]))
    i = int(np.searchsorted(edges_ns, t_cut, side="left"))
    return stationary_from(seg_energy_per_call, i, tolerance_pct)


def stationary_from(x: np.ndarray, i: int, tolerance_pct: float, batch: int = 5, min_batches: int = 4) -> int:
    """Move cut `i` later, one batch at a time, while what follows still trends.

    MSER assumes a stationary tail; a capped GEMM on an H200 drew ~720 W for its first ~3 s and
    690 W after (the limiter works to a running average), a slow decline that MSER can cut too
    early. A trend across the tail (in `batch`-segment means) larger than `tolerance_pct` and than
    twice its standard error moves the cut on, while `min_batches` remain.
    """
    x = np.asarray(x, np.float64)
    while True:
        nb = (len(x) - i) // batch
        if nb < min_batches:
            return i
        means = np.array([np.nanmean(x[i + j * batch:i + (j + 1) * batch]) for j in range(nb)])
        ok = np.isfinite(means)
        tr = trend(np.arange(nb)[ok], means[ok])
        if tr is None or not tr.significant(tolerance_pct):
            return i
        i += batch


def analyze_sustained(rec: RunRecord, trace: PowerTrace, cfg: MeasureConfig, facts: LaunchFacts,
                      wall0: float) -> KernelMeasurement:
    """Joules per call over the settled stretch of one continuous run."""
    edges, segs = _segments(rec)
    calls = np.asarray(rec.segment_calls, np.float64)
    if len(segs) < 4:
        raise MeasurementError(f"the run has {len(segs)} segments; at least 4 are needed to find a settled stretch")
    end_idx = int(np.searchsorted(edges, edges[-1] - cfg.tail_guard_s * 1e9, side="right")) - 1
    extra = [Interval("idle", *rec.idle_ns, kind="window")] if rec.idle_ns and rec.idle_ns[1] > rec.idle_ns[0] else []
    att = attribute(trace, segs + extra, config=_RAW)
    by = {iv.path: iv for iv in att.intervals}
    seg_e = np.array([by[s.path].energy_j if by[s.path].energy_j is not None else np.nan for s in segs])
    if not np.isfinite(seg_e).any():
        raise MeasurementError("no power readings covered the run; see the sampler's sources")
    g = trace.gpus[0]
    st = g.state_t_us.astype(np.int64) * 1000
    in_run = (st >= edges[0]) & (st <= edges[end_idx]) & np.isfinite(g.sm_clock_mhz)
    i0 = settle_point(edges[:end_idx + 1], seg_e[:end_idx] / calls[:end_idx], st[in_run], g.sm_clock_mhz[in_run],
                      cfg.min_drop_s, cfg.settle_tolerance_pct)
    i0 = min(i0, max(0, end_idx - 2))
    t0, t1 = int(edges[i0]), int(edges[end_idx])
    clock = CallClock(edges, rec.segment_calls)
    flags: dict[str, Flag] = {f.code: f for f in facts.flags}
    _profile_flag(att, flags)
    # The counter between readings pinned to its updates, inside the settled stretch.
    pins = (g.counter_t_us.astype(np.int64) * 1000, g.counter_j, g.counter_precise.astype(bool))
    sel = pins[2] & (pins[0] >= t0) & (pins[0] <= t1)
    p_ns, p_j = pins[0][sel], pins[1][sel]
    cbatches = counter_batches(list(p_ns), list(p_j), clock, int(edges[0])) if len(p_ns) >= 2 else []
    settled = Interval("settled", t0, t1, kind="window")
    span = [Interval("counter_span", int(p_ns[0]), int(p_ns[-1]), kind="window")] if len(p_ns) >= 2 else []
    b_edges = batch_edges_ns(t0, t1, cfg.batch_s)
    b_ivs = [Interval(f"batch{j}", a, b, kind="window") for j, (a, b) in enumerate(zip(b_edges[:-1], b_edges[1:]))]
    att2 = attribute(trace, [settled] + span + b_ivs, config=_RAW)
    by2 = {iv.path: iv for iv in att2.intervals}
    sbatches = sample_batches(b_edges, [by2[iv.path].energy_j for iv in b_ivs], clock, int(edges[0]))
    use_counter = len(cbatches) >= 2 and (p_ns[-1] - p_ns[0]) / 1e9 >= cfg.min_counter_span_s
    primary = cbatches if use_counter else sbatches
    if not primary:
        raise MeasurementError("the settled stretch holds no complete batch; lengthen run_s")
    e, tpc, p = ratio_over(primary)
    _, e_ci = mean_ci([b.energy_per_call_j for b in primary])
    _, t_ci = mean_ci([b.time_per_call_s for b in primary])
    samples_e = counter_e = diff_pct = None
    if use_counter:
        counter_e = e
        sp = by2["counter_span"]
        n_calls = clock.calls_between(p_ns[0], p_ns[-1])
        if sp.energy_j is not None and n_calls > 0:
            samples_e = sp.energy_j / n_calls
            diff_pct = 100.0 * (samples_e - counter_e) / counter_e
    else:
        samples_e = e
        flags.setdefault("counter_unavailable", Flag("counter_unavailable", "no energy-counter readings pinned over "
                         f"{cfg.min_counter_span_s:.1f} s of the settled stretch: the figure integrates the samples"))
    for f in by2["settled"].flags:
        flags.setdefault(f.code, f)
    if diff_pct is not None and abs(diff_pct) > 2.0:
        flags.setdefault("counter_disagrees", Flag("counter_disagrees", f"energy counter and samples differ by "
                                                   f"{diff_pct:+.1f}% over the settled stretch (more than 2%)"))
    tr = trend([b.t0_s + b.duration_s / 2 for b in primary], [b.energy_per_call_j for b in primary])
    settled_s = (t1 - t0) / 1e9
    if settled_s < cfg.min_settled_s - cfg.segment_s:
        flags.setdefault("not_settled", Flag("not_settled", f"only {settled_s:.1f} s of the {(edges[end_idx] - edges[0]) / 1e9:.1f} s "
                         f"run was past the transient (wanted {cfg.min_settled_s:.1f} s)"))
    if tr is not None and tr.significant(cfg.settle_tolerance_pct):
        flags.setdefault("not_settled", Flag("not_settled", f"energy per call still moved by {tr.drift_pct:+.1f}% "
                         f"(SE {tr.drift_se_pct:.1f}%) across the {settled_s:.1f} s settled stretch"))
    idle_w = _idle(by)
    seg_p = seg_e / np.maximum((edges[1:] - edges[:-1]) / 1e9, 1e-12)
    seg_clock = [c if c is not None else math.nan for c in
                 (g.sm_clock_over([(int(a), int(b))])[0] for a, b in zip(edges[:-1], edges[1:]))]
    return _finish(facts, cfg, wall0, trace, att.notes, flags, state="sustained", e=e, e_ci=e_ci, tpc=tpc,
                   t_ci=t_ci, p=p, idle_w=idle_w, samples_e=samples_e, counter_e=counter_e, diff_pct=diff_pct,
                   transient_s=(t0 - edges[0]) / 1e9, settled_s=settled_s, run_s=(edges[-1] - edges[0]) / 1e9,
                   drift_pct=None if tr is None else tr.drift_pct, batches=tuple(primary),
                   energy_source="energy_counter" if use_counter else "nvml_samples",
                   source=by2["settled"].method, span=(t0, t1),
                   segment_t_s=tuple(float(x) for x in (edges[:-1] - edges[0]) / 1e9),
                   segment_power_w=tuple(float(x) for x in seg_p),
                   segment_sm_clock_mhz=tuple(float(x) for x in seg_clock))


def analyze_bursts(recs: Sequence[RunRecord], trace: PowerTrace, cfg: MeasureConfig, facts: LaunchFacts,
                   wall0: float) -> KernelMeasurement:
    """Joules per call over the first `burst_s` after each idle gap, transient included."""
    ivs: list[Interval] = []
    clocks = []
    for i, rec in enumerate(recs):
        edges = rec.edges_ns()
        clock = CallClock(edges, rec.segment_calls)
        t1 = min(int(edges[0] + cfg.burst_s * 1e9), int(edges[-1] - cfg.tail_guard_s * 1e9))
        ivs.append(Interval(f"burst{i}", int(edges[0]), t1, kind="window"))
        # The sample straddling the idle-to-busy edge spreads part of the burst's energy before it:
        # integrate from two sample windows earlier and take that stretch's idle energy back out.
        ivs.append(Interval(f"lead{i}", int(edges[0] - _LEAD_S * 1e9), int(edges[0]), kind="window"))
        if rec.idle_ns and rec.idle_ns[1] > rec.idle_ns[0]:
            ivs.append(Interval(f"idle{i}", *rec.idle_ns, kind="window"))
        clocks.append((clock, int(edges[0])))
    att = attribute(trace, ivs, config=_RAW)
    by = {iv.path: iv for iv in att.intervals}
    flags: dict[str, Flag] = {f.code: f for f in facts.flags}
    _profile_flag(att, flags)
    batches = []
    for i, (clock, start) in enumerate(clocks):
        iv, lead, idle = by[f"burst{i}"], by[f"lead{i}"], by.get(f"idle{i}")
        n = clock.calls_between(iv.t0_ns, iv.t1_ns)
        if iv.energy_j is None or n <= 0:
            continue
        energy = iv.energy_j
        if lead.energy_j is not None and idle is not None and idle.mean_power_w is not None:
            energy += lead.energy_j - idle.mean_power_w * lead.time_s
        for f in iv.flags:
            if f.code != "short_interval":
                flags.setdefault(f.code, f)
        batches.append(Batch((start - clocks[0][1]) / 1e9, iv.time_s, n, iv.time_s / n, energy / n,
                             energy / iv.time_s, "nvml_samples"))
    if len(batches) < 2:
        raise MeasurementError("fewer than two bursts had power readings; see the sampler's sources")
    e, e_ci = mean_ci([b.energy_per_call_j for b in batches])
    tpc, t_ci = mean_ci([b.time_per_call_s for b in batches])
    p = statistics.fmean(b.mean_power_w for b in batches)
    idles = [by[k].mean_power_w for k in by if k.startswith("idle") and by[k].mean_power_w is not None]
    return _finish(facts, cfg, wall0, trace, att.notes, flags, state="burst", e=e, e_ci=e_ci, tpc=tpc, t_ci=t_ci,
                   p=p, idle_w=statistics.median(idles) if idles else None, samples_e=e, counter_e=None,
                   diff_pct=None, transient_s=None, settled_s=sum(b.duration_s for b in batches),
                   run_s=sum(b.duration_s for b in batches), drift_pct=None, batches=tuple(batches),
                   energy_source="nvml_samples", source=by["burst0"].method if "burst0" in by else "none",
                   span=(ivs[0].t0_ns, ivs[-1].t1_ns))


def _profile_flag(att, flags: dict[str, Flag]) -> None:
    """The sensor lag and window came from another card or the built-in default: say so."""
    prof = att.sensor_profiles[0] if att.sensor_profiles else None
    if prof is not None and prof.source != "measured":
        flags.setdefault("sensor_profile_not_measured", Flag("sensor_profile_not_measured", prof.note))


def _finish(facts: LaunchFacts, cfg: MeasureConfig, wall0: float, trace: PowerTrace, att_notes, flags, *, state,
            e, e_ci, tpc, t_ci, p, idle_w, samples_e, counter_e, diff_pct, transient_s, settled_s, run_s, drift_pct,
            batches, energy_source, source, span, **series) -> KernelMeasurement:
    if facts.gpu_name is not None:
        from kernelprof.estimates.datasheets import datasheet_for

        sheet = datasheet_for(facts.gpu_name)
        peak = sheet.peak_flop_s(facts.dtype) if sheet else None
        if peak and facts.flops / tpc > 1.1 * peak:
            flags.setdefault("impossible_rate", Flag("impossible_rate", f"{facts.flops / tpc / 1e12:.0f} TFLOP/s is "
                             f"above the datasheet peak ({peak / 1e12:.0f}): the timed calls did not do the work (a "
                             "graph that captured nothing, or a wrong FLOP count)"))
    if e_ci is not None and e and e_ci / e > cfg.target_rel_ci:
        flags.setdefault("imprecise", Flag("imprecise", f"95% CI is ±{100 * e_ci / e:.1f}% of the energy per call, "
                                           f"wider than the {100 * cfg.target_rel_ci:.1f}% asked for"))
    idle_kind = (f"before the run, {cfg.idle_skip_s:.2f} s after warm-up until {cfg.idle_guard_s * 1e3:.0f} ms before "
                 "the first launch" if state == "sustained" else
                 f"in the gaps between bursts, {cfg.idle_skip_s:.2f} s after each")
    dyn = None if idle_w is None else (p - idle_w) * tpc
    return KernelMeasurement(
        name=facts.name, flops=float(facts.flops), min_bytes=float(facts.min_bytes), dtype=facts.dtype, state=state,
        time_per_call_s=tpc, time_ci_s=t_ci, energy_per_call_j=e, energy_ci_j=e_ci, energy_source=energy_source,
        samples_energy_per_call_j=samples_e, counter_energy_per_call_j=counter_e, counter_vs_samples_pct=diff_pct,
        dynamic_energy_per_call_j=dyn, mean_power_w=p, idle_power_w=idle_w, idle_kind=idle_kind,
        transient_s=transient_s, settled_s=settled_s, run_s=run_s, drift_pct=drift_pct, batches=batches,
        flags=tuple(flags.values()), calls_per_launch=facts.calls_per_launch,
        launch="cuda_graph" if facts.calls_per_launch > 1 else "direct", input_sets=facts.input_sets,
        rotated_bytes=facts.rotated_bytes, method=f"steady_state/{state}", source=source,
        wall_s=time.perf_counter() - wall0, config=cfg.to_json(), notes=tuple(facts.notes) + tuple(att_notes),
        sm_clock_mhz=_state_mean(trace, "sm_clock_mhz", *span),
        nvml_utilization_pct=_state_mean(trace, "util_gpu_pct", *span),
        temperature_c=_state_mean(trace, "temperature_c", *span), **series)
