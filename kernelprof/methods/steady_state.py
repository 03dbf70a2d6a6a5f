"""Joules per call of a kernel far shorter than the power sensor's window: the steady-state method.

After Yang, Adamek and Armour (SC'24), as DESIGN.md describes:
1. warm up (compile, autotune, caches, clocks) and time one call;
2. launch the kernel back to back (rotating input copies larger than L2; a CUDA graph of many
   launches when one launch is too short to keep the GPU busy) for a window of about a second,
   CUDA events marking the window and every chunk of launches;
3. drop the ramp at the start; mean power over the steady part from the buffered samples; energy
   per call = mean power x time per call; dynamic energy = (mean - idle) x time per call, with the
   idle measured in the gaps between trials, i.e. in the state the work leaves the GPU;
4. repeat in trials separated by random gaps; median and a 95% confidence interval; add trials
   until the interval is inside the requested precision or the time cap is reached.
The energy counter, pinned to its updates inside the steady part, cross-checks the samples.
"""
from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from kernelprof.attribution.intervals import Flag, IntervalEnergy, attribute
from kernelprof.timeline.clock import Interval
from kernelprof.gpu.devices import gpu_facts, require_gpu
from kernelprof.errors import MeasurementError, UsageError
from kernelprof.sampling.runners import PowerSampler
from kernelprof.timeline.cuda_timing import rotating_input_sets, time_cuda

# Two-sided 95% Student t quantiles by degrees of freedom (n - 1), for the CI of a few trials.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def t95(dof: int) -> float:
    if dof <= 0:
        return math.inf
    keys = sorted(_T95)
    for k in keys:
        if dof <= k:
            return _T95[k]
    return 1.96


@dataclass(frozen=True)
class MeasureConfig:
    """How a steady-state measurement is made. Defaults fit one point in about 5 s."""

    window_s: float = 1.0          # launches per trial (GPU time)
    ramp_s: float = 0.25           # dropped at the start of each trial: clocks and sensor settle
    tail_s: float = 0.25           # work kept running after the counter's end mark is requested
    min_trials: int = 3
    max_trials: int = 8
    target_rel_ci: float = 0.01    # stop adding trials when the energy CI half-width is within 1%
    max_wall_s: float = 5.0        # ... or when the next trial would pass this wall time
    gap_s: tuple[float, float] = (0.35, 0.6)  # random idle gap between trials
    idle_skip_s: float = 0.2       # the first part of a gap is the power's decay tail, not idle
    idle_guard_s: float = 0.03     # ... and its last 30 ms may hold the sample smearing the next trial's start
    graph_below_s: float = 1e-3    # calls shorter than this (event-timed) are replayed from a CUDA graph
    graph_replay_s: float = 2e-3   # aim for graph replays of about this long
    chunk_s: float = 0.05          # CUDA event every ~50 ms of launches
    rotate: bool = True            # rotate input copies when the inputs fit in 4x L2
    sampler_mode: str = "thread"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.window_s <= self.ramp_s + self.tail_s:
            raise UsageError(f"window_s ({self.window_s}) must exceed ramp_s + tail_s ({self.ramp_s + self.tail_s})")
        if self.min_trials < 2:
            raise UsageError("min_trials must be at least 2 (a confidence interval needs two trials)")
        if self.max_trials < self.min_trials:
            raise UsageError(f"max_trials ({self.max_trials}) is below min_trials ({self.min_trials})")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Trial:
    index: int
    steady_s: float
    calls: int
    time_per_call_s: float
    mean_power_w: float | None
    energy_per_call_j: float | None
    idle_power_w: float | None  # the gap after this trial
    counter_power_w: float | None  # energy counter over its pinned marks / their window
    counter_vs_samples_pct: float | None  # samples minus counter over the counter's window, % of counter
    chunk_time_spread: float  # (max - min) / median of per-call time across chunks
    flags: tuple[str, ...]
    sm_clock_mhz: float | None = None  # mean of the SM clock readings in the power window


@dataclass(frozen=True)
class KernelMeasurement:
    """Energy and time per call of one kernel, with uncertainty and how it was obtained."""

    name: str
    flops: float
    min_bytes: float
    dtype: str
    time_per_call_s: float
    time_ci_s: float
    energy_per_call_j: float | None
    energy_ci_j: float | None
    dynamic_energy_per_call_j: float | None
    mean_power_w: float | None
    idle_power_w: float | None
    idle_kind: str
    counter_energy_per_call_j: float | None
    counter_vs_samples_pct: float | None  # worst trial
    trials: tuple[Trial, ...]
    flags: tuple[Flag, ...]
    calls_per_launch: int  # >1: replayed from a CUDA graph
    input_sets: int
    method: str
    source: str  # power source used: nvml_samples, instant_field, ...
    wall_s: float
    config: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    sm_clock_mhz: float | None = None  # median over trials of the mean SM clock in each power window

    @property
    def energy_rel_ci(self) -> float | None:
        if self.energy_per_call_j is None or self.energy_ci_j is None:
            return None
        return self.energy_ci_j / self.energy_per_call_j

    @property
    def achieved_flop_s(self) -> float:
        return self.flops / self.time_per_call_s

    @property
    def achieved_bytes_s(self) -> float:
        return self.min_bytes / self.time_per_call_s


def _median_ci(values: Sequence[float]) -> tuple[float, float]:
    """Median and the 95% CI half-width of the mean (Student t), for a handful of trials."""
    med = statistics.median(values)
    if len(values) < 2:
        return med, math.inf
    sd = statistics.stdev(values)
    return med, t95(len(values) - 1) * sd / math.sqrt(len(values))


def _tensor_bytes(args: Sequence[Any]) -> int:
    import torch

    return sum(a.numel() * a.element_size() for a in args if isinstance(a, torch.Tensor))


class _Launcher:
    """Calls fn over rotating input sets, directly or by replaying a CUDA graph of many calls."""

    def __init__(self, fn: Callable[..., Any], sets: list[tuple], calls_per_launch: int) -> None:
        import torch

        self.fn, self.sets, self.k = fn, sets, calls_per_launch
        self.step = 0
        self.graph = None
        if calls_per_launch > 1:
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                self._direct()
            torch.cuda.current_stream().wait_stream(s)
            torch.cuda.synchronize()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                for _ in range(calls_per_launch):
                    self._direct()
            torch.cuda.synchronize()

    def _direct(self) -> None:
        self.fn(*self.sets[self.step % len(self.sets)])
        self.step += 1

    def launch(self, n: int) -> None:
        """n launches = n x calls_per_launch calls."""
        if self.graph is not None:
            for _ in range(n):
                self.graph.replay()
        else:
            for _ in range(n):
                self._direct()


def _calls_per_launch(fn: Callable[..., Any], sets: list[tuple], t_event_s: float, cfg: MeasureConfig,
                      notes: list[str]) -> int:
    """1 for direct launches, or the calls per CUDA-graph replay for sub-millisecond calls.

    Event timing of single calls cannot tell a short kernel from a long one behind a slow Python
    wrapper: on an H100 (2026-11-26) a ~10 us decode call read ~200 us launched from Python, at
    idle power, and a 190 us decode call was launch-limited on some trials and not on others
    (energy CV 1.1% over five measurements). So every call under a millisecond that can be
    captured runs from a graph of ~2 ms replays, which is also how such kernels run in practice.
    """
    if cfg.graph_below_s <= 0 or t_event_s > cfg.graph_below_s:
        return 1  # a call this long hides any launch overhead; don't capture 20 of them
    try:
        g = time_cuda(fn, *sets[0], input_sets=sets, cache="rotate" if len(sets) > 1 else "none",
                      graph_calls=20, warmup_reps=2, budget_ms=20)
    except Exception as exc:  # noqa: BLE001 - not capturable (host syncs, allocations): launch directly
        notes.append(f"direct launches: the call could not be captured in a CUDA graph ({type(exc).__name__})")
        return 1
    t_graph = g.median_s
    k = int(min(1000, max(2, round(cfg.graph_replay_s / max(t_graph, 1e-7)))))
    notes.append(f"{k} calls per CUDA-graph replay: {t_graph * 1e6:.1f} us per call in a graph, "
                 f"{t_event_s * 1e6:.1f} us launched one at a time from Python")
    return k


def measure_kernel(fn: Callable[..., Any], *args: Any, flops: float, bytes: float, dtype: str = "bf16",
                   name: str | None = None, device: int = 0, config: MeasureConfig | None = None,
                   input_sets: Sequence[tuple] | None = None) -> KernelMeasurement:
    """Energy and time per call of `fn(*args)` on CUDA device `device` by the steady-state method.

    `flops` and `bytes` are the analytic FLOPs and minimum bytes of one call (for the estimates and
    achieved rates). `input_sets` overrides the rotating copies made from `args`.
    """
    require_gpu("measure_kernel")
    import torch

    cfg = config or MeasureConfig()
    rng = random.Random(cfg.seed)
    wall0 = time.perf_counter()
    facts = gpu_facts(device)
    nvml_index = facts.nvml_index if facts.nvml_index is not None else device
    notes: list[str] = []

    with torch.cuda.device(device):
        # 1. Warm-up (compile, autotune) and a first time per call, warm L2: an upper bound on rate.
        warm = time_cuda(fn, *args, cache="none", warmup_ms=30, budget_ms=30)
        t_est = warm.median_s
        if input_sets is not None:
            sets = [tuple(s) for s in input_sets]
        elif cfg.rotate and _tensor_bytes(args) < 4 * (facts.l2_bytes or 50 * 2**20):
            sets = rotating_input_sets(tuple(args))
        else:
            sets = [tuple(args)]
        if len(sets) > 1:
            notes.append(f"rotating {len(sets)} input copies so the inputs are not served from L2")
        k = _calls_per_launch(fn, sets, t_est, cfg, notes)
        launcher = _Launcher(fn, sets, k)
        # Re-time per launch unit with the launcher itself (graph replays run faster than launches).
        launcher.launch(3)
        torch.cuda.synchronize()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        probe_n = max(3, int(0.05 / (t_est * k)))
        e0.record()
        launcher.launch(probe_n)
        e1.record()
        torch.cuda.synchronize()
        t_unit = e0.elapsed_time(e1) / 1e3 / probe_n
        if t_unit * 10 > cfg.window_s:
            notes.append(f"one call takes {t_unit * 1e3:.1f} ms: each trial holds only "
                         f"{max(1, int(cfg.window_s / t_unit))} calls")

        def units(seconds: float) -> int:
            return max(1, int(round(seconds / t_unit)))

        chunk = units(cfg.chunk_s)

        def run_trials(n: int) -> tuple[list[dict[str, Any]], Any]:
            """n trials under one sampler run; returns the trials' events and the trace."""
            sampler = PowerSampler([nvml_index], mode=cfg.sampler_mode).start()
            out: list[dict[str, Any]] = []
            try:
                time.sleep(0.05)  # let the sampler's first drain and probes pass
                for _ in range(n):
                    out.append(_one_trial(launcher, sampler, units, chunk, k, cfg, rng))
                    sampler.check()
                return out, sampler.stop()
            except BaseException:
                try:
                    sampler.stop()
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
                raise

        batches = [run_trials(cfg.min_trials)]
        result = _result_from_trials(batches, t_unit=t_unit, k=k, cfg=cfg, name=name or getattr(fn, "__name__", "kernel"),
                                     flops=flops, min_bytes=bytes, dtype=dtype, sets=len(sets), notes=notes, wall0=wall0,
                                     gpu_name=facts.name)
        # 4. Adapt: more trials while the CI is wider than asked and the time cap allows.
        while (result.energy_rel_ci is not None and result.energy_rel_ci > cfg.target_rel_ci
               and len(result.trials) + 2 <= cfg.max_trials):
            per_trial = result.wall_s / len(result.trials)
            if result.wall_s + 2 * per_trial > cfg.max_wall_s:
                break
            batches.append(run_trials(2))
            result = _result_from_trials(batches, t_unit=t_unit, k=k, cfg=cfg, name=result.name, flops=flops,
                                         min_bytes=bytes, dtype=dtype, sets=len(sets), notes=notes, wall0=wall0,
                                         gpu_name=facts.name)
    return result


def _one_trial(launcher: _Launcher, sampler: PowerSampler, units: Callable[[float], int], chunk: int, k: int,
               cfg: MeasureConfig, rng: random.Random) -> dict[str, Any]:
    """Ramp, steady part with chunk events and pinned counter marks, tail, then an idle gap."""
    import torch

    torch.cuda.synchronize()
    ev_start = torch.cuda.Event(enable_timing=True)
    anchor_ns = time.time_ns()  # the GPU is idle and synchronized: the event below lands now
    ev_start.record()
    launcher.launch(units(cfg.ramp_s))
    torch.cuda.synchronize()  # the GPU is at the end of the ramp: pin the counter's start here
    sampler.mark_counter(precise=True)
    evs = [torch.cuda.Event(enable_timing=True)]
    evs[0].record()
    chunk_units: list[int] = []

    def run(total: int) -> None:
        done = 0
        while done < total:
            n = min(chunk, total - done)
            launcher.launch(n)
            done += n
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            evs.append(ev)
            chunk_units.append(n)

    run(units(cfg.window_s - cfg.ramp_s - cfg.tail_s))
    # Keep the GPU busy while the end mark waits for the counter's next update (<= 100 ms), and
    # past the power window's end: a window ending where the work ends reads the ~20 ms sample that
    # straddles the drop to idle (-0.3% at 600 W over 120 W, 0.75 s windows, 3.6 ms sensor lag).
    torch.cuda.synchronize()
    sampler.mark_counter(precise=True)
    steady_end = len(evs) - 1
    run(units(cfg.tail_s))
    torch.cuda.synchronize()
    end_ns = time.time_ns()
    gap = rng.uniform(*cfg.gap_s)
    time.sleep(gap)
    # Plain numbers from here on (ms after the anchor event), so the analysis needs no GPU.
    return {"anchor_ns": anchor_ns, "event_ms": [ev_start.elapsed_time(e) for e in evs],
            "chunk_units": chunk_units, "end_ns": end_ns, "gap_s": gap, "power_end_index": steady_end}


def _result_from_trials(batches, *, t_unit, k, cfg: MeasureConfig, name, flops, min_bytes, dtype,
                        sets, notes, wall0, gpu_name: str | None = None) -> KernelMeasurement:
    """Attribute each batch's trials over its own trace and combine them into one measurement."""
    by: dict[str, IntervalEnergy] = {}
    clocks: dict[str, float | None] = {}
    per_trial_calls: list[tuple[int, float, float]] = []  # (calls, time_per_call_s, chunk_spread)
    att_notes: tuple[str, ...] = ()
    i = 0
    for trials_ev, trace in batches:
        intervals, i = _trial_intervals(trials_ev, i, k, cfg, per_trial_calls)
        att = attribute(trace, intervals)
        att_notes = att.notes
        by.update({iv.path: iv for iv in att.intervals})
        if trace.gpus:
            clocks.update({iv.path: trace.gpus[0].sm_clock_over([(iv.t0_ns, iv.t1_ns)])[0] for iv in intervals})
    return _combine_trials(by, per_trial_calls, k=k, cfg=cfg, name=name, flops=flops, min_bytes=min_bytes,
                           dtype=dtype, sets=sets, notes=tuple(notes) + att_notes, wall0=wall0, gpu_name=gpu_name,
                           clocks=clocks)


def _trial_intervals(trials_ev, first: int, k: int, cfg: MeasureConfig,
                     per_trial_calls: list[tuple[int, float, float]]) -> tuple[list[Interval], int]:
    intervals: list[Interval] = []
    i = first
    for tr in trials_ev:
        ms = tr["event_ms"]
        # Event times are ms after an anchor event recorded on an idle, synchronized GPU at anchor_ns.
        # Over a ~1 s trial the drift between the GPU and host clocks (ppm) is negligible.
        t0_ns = tr["anchor_ns"] + int(ms[0] * 1e6)
        # Power over the part with work on both sides; time per call from every chunk.
        t1_ns = tr["anchor_ns"] + int(ms[tr.get("power_end_index", len(ms) - 1)] * 1e6)
        calls = sum(tr["chunk_units"]) * k
        steady_s = (ms[-1] - ms[0]) / 1e3
        chunk_t = [(ms[j + 1] - ms[j]) / 1e3 / (tr["chunk_units"][j] * k) for j in range(len(ms) - 1)]
        spread = (max(chunk_t) - min(chunk_t)) / statistics.median(chunk_t) if len(chunk_t) > 1 else 0.0
        per_trial_calls.append((calls, steady_s / calls, spread))
        intervals.append(Interval(f"trial{i}", t0_ns, t1_ns, kind="window", path=f"trial{i}"))
        idle0 = tr["end_ns"] + int(cfg.idle_skip_s * 1e9)
        # Stop a sample window (+ lag) before the next trial's work, whose edge its last sample smears.
        idle1 = tr["end_ns"] + int((tr["gap_s"] - cfg.idle_guard_s) * 1e9)
        if idle1 > idle0:
            intervals.append(Interval(f"idle{i}", idle0, idle1, kind="window", path=f"idle{i}"))
        i += 1
    return intervals, i


def _combine_trials(by: dict[str, IntervalEnergy], per_trial_calls, *, k, cfg, name, flops, min_bytes, dtype,
                    sets, notes, wall0, gpu_name: str | None = None,
                    clocks: dict[str, float | None] | None = None) -> KernelMeasurement:
    trials: list[Trial] = []
    flags: dict[str, Flag] = {}
    source = "none"
    for i, (calls, tpc, spread) in enumerate(per_trial_calls):
        iv: IntervalEnergy = by[f"trial{i}"]
        idle = by.get(f"idle{i}")
        source = iv.method
        p = iv.mean_power_w
        idle_w = idle.mean_power_w if idle is not None else None
        counter_w = diff_pct = None
        checks = [g.counter for g in iv.gpus]
        if checks and all(c is not None for c in checks):
            counter_w = sum(c.counter_energy_j for c in checks) / checks[0].window_s
            diffs = [c.diff_pct for c in checks if c.diff_pct is not None]
            diff_pct = max(diffs, key=abs) if diffs else None
        trial_flags = [f.code for f in iv.flags]
        if spread > 0.05:
            trial_flags.append("time_drift")
            flags.setdefault("time_drift", Flag("time_drift", f"time per call moved by {100 * spread:.0f}% across a "
                                                "trial's chunks (clocks changed, or another process ran)"))
        for f in iv.flags:
            flags.setdefault(f.code, f)
        trials.append(Trial(i, tpc * calls, calls, tpc, p, None if p is None else p * tpc, idle_w, counter_w,
                            diff_pct, spread, tuple(trial_flags), sm_clock_mhz=(clocks or {}).get(f"trial{i}")))

    times = [t.time_per_call_s for t in trials]
    t_med, t_ci = _median_ci(times)
    energies = [t.energy_per_call_j for t in trials if t.energy_per_call_j is not None]
    e_med = e_ci = dyn = p_med = idle_med = None
    if energies:
        e_med, e_ci = _median_ci(energies)
        p_med = statistics.median(t.mean_power_w for t in trials if t.mean_power_w is not None)
    idles = [t.idle_power_w for t in trials if t.idle_power_w is not None]
    if idles:
        idle_med = statistics.median(idles)
        if e_med is not None:
            dyn = statistics.median((t.mean_power_w - idle_med) * t.time_per_call_s
                                    for t in trials if t.mean_power_w is not None)
    counter_pc = None
    cws = [(t.counter_power_w, t.time_per_call_s) for t in trials if t.counter_power_w is not None]
    if cws:
        counter_pc = statistics.median(w * tpc for w, tpc in cws)
    diffs = [t.counter_vs_samples_pct for t in trials if t.counter_vs_samples_pct is not None]
    worst = max(diffs, key=abs) if diffs else None
    if worst is not None and abs(worst) > 2.0:
        flags.setdefault("counter_disagrees", Flag("counter_disagrees", f"energy counter and samples differ by "
                                                   f"{worst:+.1f}% in a trial (more than 2%)"))
    if e_med is None:
        raise MeasurementError("no power readings covered the steady windows; see the sampler's sources")
    if gpu_name is not None:
        from kernelprof.estimates.datasheets import datasheet_for

        sheet = datasheet_for(gpu_name)
        peak = sheet.peak_flop_s(dtype) if sheet else None
        if peak and flops / t_med > 1.1 * peak:
            flags.setdefault("impossible_rate", Flag("impossible_rate", f"{flops / t_med / 1e12:.0f} TFLOP/s is above "
                             f"the datasheet peak ({peak / 1e12:.0f}): the timed calls did not do the work (a graph "
                             "that captured nothing, or a wrong FLOP count)"))
    if e_ci is not None and e_med and e_ci / e_med > cfg.target_rel_ci:
        flags.setdefault("imprecise", Flag("imprecise", f"95% CI is ±{100 * e_ci / e_med:.1f}% of the energy "
                                           f"per call, wider than the {100 * cfg.target_rel_ci:.0f}% asked for"))
    return KernelMeasurement(
        name=name, flops=float(flops), min_bytes=float(min_bytes), dtype=dtype, time_per_call_s=t_med,
        time_ci_s=t_ci, energy_per_call_j=e_med, energy_ci_j=e_ci, dynamic_energy_per_call_j=dyn,
        mean_power_w=p_med, idle_power_w=idle_med,
        idle_kind=f"right after work: {cfg.idle_skip_s:.2f} s into each gap between trials until "
                  f"{cfg.idle_guard_s * 1e3:.0f} ms before the next",
        counter_energy_per_call_j=counter_pc, counter_vs_samples_pct=worst, trials=tuple(trials),
        flags=tuple(flags.values()), calls_per_launch=k, input_sets=sets, method="steady_state", source=source,
        wall_s=time.perf_counter() - wall0, config=cfg.to_json(), notes=tuple(notes),
        sm_clock_mhz=statistics.median(sm) if (sm := [t.sm_clock_mhz for t in trials if t.sm_clock_mhz is not None])
        else None)
