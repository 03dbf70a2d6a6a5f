"""Joules per call of a kernel far shorter than the power sensor's window: the steady-state method.

After Yang, Adamek and Armour (SC'24), as DESIGN.md describes, with the settled state found and
checked rather than assumed (kernelprof.methods.settled):
1. warm up (compile, autotune, caches, clocks); rotate input copies larger than L2; replay calls
   from a CUDA graph when one launch is too short to keep the GPU busy, but only if the graph runs
   the calls at least as fast as direct launches (a graph can capture a different operation: a
   1 GiB `copy_` replayed from a graph ran 776 us per call against 508 us launched directly, H200);
2. read the idle baseline in the state the warm-up leaves;
3. sustained (default): one continuous run, a CUDA event every ~100 ms and an energy-counter
   reading pinned to its update every ~0.5 s, until a settled stretch of `min_settled_s` follows
   the limiter's transient (or `max_run_s`); burst: short runs after idle gaps;
4. hand the plain numbers to kernelprof.methods.steady_state_analysis, which finds the transient, takes the
   counter over the settled stretch (samples as cross-check), and flags what may be wrong.
"""
from __future__ import annotations

import random
import time
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from kernelprof.attribution.intervals import Flag, load_sensor_profile, PowerFunction
from kernelprof.gpu.devices import gpu_facts, require_gpu
from kernelprof.errors import UsageError
from kernelprof.methods.steady_state_analysis import (KernelMeasurement, LaunchFacts, MeasureConfig, RunRecord, analyze_bursts,
                                       analyze_sustained, settle_point)
from kernelprof.sampling.core import SamplerConfig
from kernelprof.sampling.runners import PowerSampler
from kernelprof.methods.settled import CallClock, batch_edges_ns, mean_ci, trend
from kernelprof.timeline.cuda_timing import rotating_input_sets, time_cuda

__all__ = ["MeasureConfig", "KernelMeasurement", "measure_kernel"]


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

    def seconds_per_launch(self, budget_s: float = 0.03) -> float:
        """Back-to-back launches timed with CUDA events over about `budget_s`."""
        import torch

        self.launch(2)
        torch.cuda.synchronize()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        self.launch(1)
        e1.record()
        e1.synchronize()
        one = max(e0.elapsed_time(e1) / 1e3, 1e-7)
        n = int(min(10_000, max(3, budget_s / one)))
        e0.record()
        self.launch(n)
        e1.record()
        e1.synchronize()
        return e0.elapsed_time(e1) / 1e3 / n


def _launch_plan(fn: Callable[..., Any], sets: list[tuple], cfg: MeasureConfig, notes: list[str],
                 flags: list[Flag]) -> tuple[_Launcher, float]:
    """The launcher (direct, or a CUDA graph of k calls) and its seconds per launch.

    A graph is used only for calls under `graph_below_s` launched back to back, and only when its
    replays run each call no slower than direct launches: then the difference is launch overhead
    (a ~10 us decode call read ~200 us from Python on an H100), not a different operation.
    """
    direct = _Launcher(fn, sets, 1)
    t_direct = direct.seconds_per_launch()
    if cfg.graph_below_s <= 0 or t_direct > cfg.graph_below_s:
        return direct, t_direct
    try:
        g = time_cuda(fn, *sets[0], input_sets=sets, cache="rotate" if len(sets) > 1 else "none",
                      graph_calls=20, warmup_reps=2, budget_ms=20)
    except Exception as exc:  # noqa: BLE001 - not capturable (host syncs, allocations): launch directly
        msg = (f"the call could not be captured in a CUDA graph ({type(exc).__name__}: {str(exc)[:120]}); "
               f"measured with direct launches at {t_direct * 1e6:.1f} us per call")
        # A flag, not a note: the graph was wanted because direct launches misread calls this short.
        flags.append(Flag("graph_capture_failed", msg))
        if t_direct < 50e-6:  # so short that Python's launch rate, not the kernel, may set the pace
            flags.append(Flag("launch_bound", msg + ": a call this short may be paced by launch overhead"))
        return direct, t_direct
    t_graph = g.median_s
    if t_graph > t_direct * (1 + cfg.graph_tolerance):
        notes.append(f"direct launches: a CUDA graph ran each call slower ({t_graph * 1e6:.1f} us vs "
                     f"{t_direct * 1e6:.1f} us launched back to back), so it would measure another operation "
                     "(copies captured as copy-engine nodes, for one)")
        return direct, t_direct
    # Cover every input set in one replay, so the rotation really exceeds L2.
    k = int(min(1000, max(2, round(cfg.graph_replay_s / max(t_graph, 1e-7)), min(len(sets), 1000))))
    launcher = _Launcher(fn, sets, k)
    t_launch = launcher.seconds_per_launch()
    notes.append(f"{k} calls per CUDA-graph replay: {t_launch / k * 1e6:.1f} us per call in a graph, "
                 f"{t_direct * 1e6:.1f} us launched back to back from Python")
    return launcher, t_launch


def measure_kernel(fn: Callable[..., Any], *args: Any, flops: float, min_bytes: float | None = None,
                   dtype: str = "bf16", name: str | None = None, device: int = 0,
                   config: MeasureConfig | None = None, input_sets: Sequence[tuple] | None = None,
                   **legacy: Any) -> KernelMeasurement:
    """Energy and time per call of `fn(*args)` on CUDA device `device` by the steady-state method.

    `flops` and `min_bytes` are the analytic FLOPs and minimum bytes of one call (for the estimates
    and achieved rates). `input_sets` overrides the rotating copies made from `args`. The state
    measured (`config.state`) is "sustained" by default; the result says which.
    """
    if "bytes" in legacy:
        warnings.warn("measure_kernel(bytes=...) is deprecated: use min_bytes=", DeprecationWarning, stacklevel=2)
        if min_bytes is not None:
            raise UsageError("give min_bytes= or the old bytes=, not both")
        min_bytes = legacy.pop("bytes")
    if legacy:
        raise UsageError(f"measure_kernel got unexpected keyword(s) {sorted(legacy)}")
    if min_bytes is None:
        raise UsageError("measure_kernel needs min_bytes= (the fewest bytes one call must move; 0 if unknown)")
    for label, v in (("flops", flops), ("min_bytes", min_bytes)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise UsageError(f"{label} must be a finite number >= 0, got {v!r}")
    if not callable(fn):
        raise UsageError(f"measure_kernel needs a callable, got {type(fn).__name__}")
    if input_sets is not None:
        input_sets = [tuple(x) for x in input_sets]
        if not input_sets:
            raise UsageError("input_sets is empty: give at least one tuple of arguments")
        if not args:
            args = input_sets[0]
    cfg = config or MeasureConfig()
    require_gpu("measure_kernel")
    import torch

    rng = random.Random(cfg.seed)
    wall0 = time.perf_counter()
    facts = gpu_facts(device)
    nvml_index = facts.nvml_index if facts.nvml_index is not None else device
    notes: list[str] = []
    flags: list[Flag] = []
    with torch.cuda.device(device):
        time_cuda(fn, *args, cache="none", warmup_ms=30, budget_ms=30)  # compile, autotune, clocks up
        l2 = facts.l2_bytes or 50 * 2**20
        if input_sets is not None:
            sets = [tuple(s) for s in input_sets]
        elif cfg.rotate and 0 < _tensor_bytes(args) < 4 * l2:
            sets = rotating_input_sets(tuple(args), min_total_bytes=4 * l2)
        else:
            sets = [tuple(args)]
        rotated = sum(_tensor_bytes(s) for s in sets)
        launcher, t_launch = _launch_plan(fn, sets, cfg, notes, flags)
        if len(sets) > 1:
            # A CUDA graph replays the same k calls, so it cycles min(k, sets) of the copies.
            cycled = len(sets) if launcher.graph is None else min(len(sets), launcher.k)
            cycled_bytes = rotated * cycled / len(sets)
            notes.append(f"rotating {cycled} input copies ({cycled_bytes / 2**20:.1f} MiB, {cycled_bytes / l2:.2f}x L2)"
                         + (" so the inputs are not served from L2" if cycled_bytes >= l2 else
                            ": less than L2, so some inputs may be served from L2"))
        launch_facts = LaunchFacts(name or getattr(fn, "__name__", "kernel"), flops, min_bytes, dtype, launcher.k,
                                   len(sets), rotated, (), (), facts.name)
        profile = load_sensor_profile(facts.uuid, facts.driver_version, facts.name)
        # The sampler pins the energy counter to its updates every counter_mark_s (on its predicted
        # 100 ms grid, a few reads per pin): those pins give the settled stretch's joules.
        sampler = PowerSampler([nvml_index], mode=cfg.sampler_mode,
                               config=SamplerConfig(counter_interval_s=cfg.counter_mark_s)).start()
        try:
            if cfg.state == "sustained":
                recs = [_run_sustained(launcher, sampler, t_launch, cfg, profile, wall0)]
            else:
                recs = [_run_burst(launcher, sampler, t_launch, cfg, rng) for _ in range(cfg.burst_trials)]
            trace = sampler.stop()
        except BaseException:
            sampler.abort()  # stop without collecting: the original error is what matters
            raise
    launch_facts = LaunchFacts(**{**launch_facts.__dict__, "notes": tuple(notes), "flags": tuple(flags)})
    if cfg.state == "sustained":
        return analyze_sustained(recs[0], trace, cfg, launch_facts, wall0)
    return analyze_bursts(recs, trace, cfg, launch_facts, wall0)


def _idle_then_anchor(cfg: MeasureConfig, idle_s: float) -> tuple[tuple[int, int], int, Any]:
    """Sleep `idle_s` on a synchronized GPU, then record the anchor event; (idle span, anchor_ns, event)."""
    import torch

    torch.cuda.synchronize()
    t_idle = time.time_ns()
    time.sleep(idle_s)
    idle = (t_idle + int(cfg.idle_skip_s * 1e9), t_idle + int((idle_s - cfg.idle_guard_s) * 1e9))
    ev0 = torch.cuda.Event(enable_timing=True)
    anchor_ns = time.time_ns()  # the GPU is idle and synchronized: the event below lands now
    ev0.record()
    return idle, anchor_ns, ev0


def _run_sustained(launcher: _Launcher, sampler: PowerSampler, t_launch: float, cfg: MeasureConfig, profile,
                   wall0: float) -> RunRecord:
    """One continuous run with a CUDA event every ~segment_s, until settled or max_run_s."""
    import torch

    seg_units = max(1, int(round(cfg.segment_s / t_launch)))
    idle, anchor_ns, ev0 = _idle_then_anchor(cfg, cfg.idle_s)
    events, calls = [ev0], []
    t_start = time.perf_counter()
    next_check = t_start + cfg.run_s
    while True:
        launcher.launch(seg_units)
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        events.append(ev)
        calls.append(seg_units * launcher.k)
        if len(events) > 3:  # keep the host at most two segments ahead, so host time tracks the GPU
            events[-3].synchronize()
        now = time.perf_counter()
        if now >= next_check:
            elapsed = now - t_start
            if elapsed >= cfg.max_run_s or now - wall0 >= cfg.max_wall_s - cfg.tail_s - 0.5:
                break
            if _settled_so_far(sampler, anchor_ns, events[:-2], calls[:-2], cfg, profile):
                break
            next_check = now + cfg.check_s
    # Keep the GPU busy past the last pin the sampler takes inside the run (every counter_mark_s).
    tail_units = max(1, int(round(cfg.tail_s / t_launch)))
    done = 0
    while done < tail_units:
        n = min(seg_units, tail_units - done)
        launcher.launch(n)
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        events.append(ev)
        calls.append(n * launcher.k)
        done += n
    torch.cuda.synchronize()
    return RunRecord(anchor_ns, tuple(ev0.elapsed_time(e) for e in events), tuple(calls), idle)


def _settled_so_far(sampler: PowerSampler, anchor_ns: int, events, calls, cfg: MeasureConfig, profile) -> bool:
    """Whether the samples drained so far show `min_settled_s` of settled state with a tight enough interval."""
    peek = sampler.peek_samples(0)
    if peek is None or len(peek[0]) < 10 or len(calls) < 4:
        return False  # process mode (no peek) or nothing yet: run to max_run_s
    t_us, w = peek
    f = PowerFunction.from_windows(t_us, w, period_s=profile.samples_period_s, lag_s=profile.samples_lag_s)
    ms = [events[0].elapsed_time(e) for e in events]
    edges = anchor_ns + np.round(np.asarray(ms) * 1e6).astype(np.int64)
    covered_end = (int(t_us[-1]) - int(profile.samples_lag_s * 1e6)) * 1000 - int(cfg.tail_guard_s * 1e9)
    n = int(np.searchsorted(edges, covered_end, side="right")) - 1
    if n < 4:
        return False
    seg_e = np.array([f.energy_j(int(a), int(b)) for a, b in zip(edges[:n], edges[1:n + 1])])
    e_call = seg_e / np.asarray(calls[:n], np.float64)
    i0 = settle_point(edges[:n + 1], e_call, np.array([]), np.array([]), cfg.min_drop_s, cfg.settle_tolerance_pct)
    if i0 >= n or (edges[n] - edges[i0]) / 1e9 < cfg.min_settled_s:
        return False
    clock = CallClock(edges[:n + 1], calls[:n])
    b = batch_edges_ns(int(edges[i0]), int(edges[n]), cfg.batch_s)
    per_call = [f.energy_j(x, y) / clock.calls_between(x, y) for x, y in zip(b[:-1], b[1:])]
    m, ci = mean_ci(per_call)
    tr = trend([(x + y) / 2e9 for x, y in zip(b[:-1], b[1:])], per_call)
    return ci / m <= cfg.target_rel_ci and not (tr is not None and tr.significant(cfg.settle_tolerance_pct))


def _run_burst(launcher: _Launcher, sampler: PowerSampler, t_launch: float, cfg: MeasureConfig,
               rng: random.Random) -> RunRecord:
    """An idle gap, then `burst_s` of back-to-back launches (plus a tail), events every segment."""
    import torch

    seg_units = max(1, int(round(cfg.segment_s / 2 / t_launch)))
    idle, anchor_ns, ev0 = _idle_then_anchor(cfg, rng.uniform(*cfg.burst_gap_s))
    events, calls = [ev0], []
    total = max(1, int(round((cfg.burst_s + cfg.tail_s) / t_launch)))
    done = 0
    while done < total:
        n = min(seg_units, total - done)
        launcher.launch(n)
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        events.append(ev)
        calls.append(n * launcher.k)
        done += n
    torch.cuda.synchronize()
    return RunRecord(anchor_ns, tuple(ev0.elapsed_time(e) for e in events), tuple(calls), idle)
