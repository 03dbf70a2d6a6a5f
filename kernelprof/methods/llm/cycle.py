"""The steady-state reference for phases shorter than the power limiter: the phases cycled as in a run.

Looped alone for seconds, a phase that draws more than the card's power limit settles where the
limiter puts it. On an H100 (700 W) the fused Llama-3.1-8B prefill draws 740-880 W for about
200 ms before the SW power cap pulls the SM clock from 1980 MHz toward 1400 MHz; in a run it never
gets there, because each prefill follows a second of decode at 420-570 W. The looped-alone power
is then that of a state the run does not reach, and "steady power x in-run time" is off by the
difference (+5 to +8% for the 8B prefill at batch 8 and 64, 2026-11-26), while energy attribution
is not at fault.

This reference keeps each phase in the state the run leaves it in: one prefill, then the request's
decode steps at a fixed context (the middle of the decode range, as the looped decode step), back
to back for as many cycles as the run had requests, read by both methods (samples integrated over
each phase, and the phase fit). What it shares with the in-run measurement: the power sensor and
its model (window, lag), and the alternation of the phases. What it does not: the generate loop
(growing context, sampling, host work between steps) and the run's phase boundaries. The mean SM
clock of each phase (10 Hz state readings) goes with it, so a report can show which state a
phase ran in.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

from kernelprof.attribution.phase_fit import PhaseFit


@dataclass(frozen=True)
class PhaseSummary:
    """One top-level phase kind of a profiled run (in-run requests or the cycled reference)."""

    name: str                    # "prefill" | "decode"
    calls: int                   # prefills, or decode steps, measured
    time_s: float                # summed over its intervals
    time_per_call_s: float
    energy_j: float | None       # samples integrated over the phase's intervals
    power_w: float | None        # energy_j / time_s
    energy_fit_j: float | None   # the phase fit's power x the kind's time in the window
    power_fit_w: float | None    # the phase fit's mean power for this phase
    power_fit_se_w: float | None
    sm_clock_mhz: float | None   # mean of the SM clock readings inside the phase
    clock_readings: int
    flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "flags": list(self.flags)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PhaseSummary:
        return cls(**{**d, "flags": tuple(d.get("flags", ()))})


@dataclass(frozen=True)
class CycleMeasurement:
    cycles: int
    decode_steps: int            # per cycle
    decode_context: int          # tokens in the cache during each (fixed-position) decode step
    phases: tuple[PhaseSummary, ...]
    wall_s: float
    notes: tuple[str, ...] = ()

    def phase(self, name: str) -> PhaseSummary | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "phases": [p.to_json() for p in self.phases], "notes": list(self.notes)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CycleMeasurement:
        return cls(**{**d, "phases": tuple(PhaseSummary.from_json(p) for p in d["phases"]),
                      "notes": tuple(d.get("notes", ()))})


def cycle_profile_path(profile_path: str) -> str:
    """Where the cycled reference's profile goes beside a run's: x.profile.json -> x.cycle.profile.json."""
    suffix = ".profile.json"
    stem = profile_path[: -len(suffix)] if profile_path.endswith(suffix) else profile_path.rsplit(".json", 1)[0]
    return stem + ".cycle" + suffix


def phase_sm_clock(trace: Any, timeline: Any, name: str, *, depth: int = 0, gpu: int = 0) -> tuple[float | None, int]:
    """Mean SM clock over every interval named `name` at `depth`, and the readings behind it."""
    g = next((x for x in trace.gpus if x.gpu == gpu), None)
    if g is None:
        return None, 0
    spans = [(iv.t0_ns, iv.t1_ns) for iv in timeline.intervals if iv.depth == depth and iv.name == name]
    return g.sm_clock_over(spans)


def summarize_phases(phases: Any, fit: PhaseFit | None, trace: Any, timeline: Any,
                     calls: Mapping[str, int]) -> list[PhaseSummary]:
    """Per-phase time, integrated and fitted power and clock of a profiled run of top-level phases.

    `phases`: the attributed intervals (a ProfileResult's `phases`); `calls`: prefills and decode
    steps measured per phase name. Works on a saved run as on a live one; `run_llm` reads its in-run
    requests and the cycled reference through it alike.
    """
    out = []
    for name, n in calls.items():
        top = [p for p in phases if p.path == name]
        if not top or n <= 0:
            continue
        t = sum(p.time_s for p in top)
        e = sum(p.energy_j for p in top) if all(p.energy_j is not None for p in top) else None
        kf = fit.kind(name) if fit is not None and any(k.kind == name for k in fit.kinds) else None
        clock, readings = phase_sm_clock(trace, timeline, name)
        flags = sorted({f.code for p in top for f in p.flags})
        out.append(PhaseSummary(name, n, t, t / n, e, None if e is None or t <= 0 else e / t,
                                None if kf is None else kf.energy_j, None if kf is None else kf.power_w,
                                None if kf is None else kf.power_se_w, clock, readings, tuple(flags)))
    return out


def measure_cycle(prefill: Callable[[], Any], step: Callable[[], Any], decode_steps: int, cycles: int, *,
                  decode_context: int, device: int = 0, profile_path: str | None = None,
                  extra: dict[str, Any] | None = None) -> CycleMeasurement:
    """Run `cycles` x (one `prefill`, then `decode_steps` x `step`) back to back under a Profiler.

    Both callables must already be warm (compiled, autotuned, graphs captured): one unmeasured
    cycle runs first only to leave the GPU in the state a run's previous request would.
    `profile_path`: also save the profiled cycles as a run file (`extra` goes in its payload).
    """
    import torch

    from kernelprof.gpu.devices import require_gpu
    from kernelprof.errors import UsageError
    from kernelprof.attribution.phase_fit import fit_profile_phases
    from kernelprof.profiler import Profiler

    require_gpu("the cycled steady state")
    if cycles < 2 or decode_steps < 1:
        raise UsageError(f"a cycle needs at least 2 cycles and 1 decode step (got {cycles} and {decode_steps})")
    wall0 = time.perf_counter()
    with torch.cuda.device(device):
        prefill()
        for _ in range(decode_steps):
            step()
        with Profiler(gpus=[device]) as prof:
            for _ in range(cycles):
                with prof.phase("prefill"):
                    prefill()
                with prof.phase("decode"):
                    for _ in range(decode_steps):
                        step()
    res = prof.result()
    if profile_path:
        prof.save(profile_path, extra={"llm_cycle": {"cycles": cycles, "decode_steps": decode_steps,
                                                     "decode_context": decode_context, **(extra or {})}})
    fit = fit_profile_phases(prof.trace, prof.timeline, prof.window, prof.sensor_profiles[0])
    notes = [f"phase fit: {n}" for n in fit.notes] if fit is not None else ["phase fit: no buffered samples"]
    phases = summarize_phases(res.phases, fit, prof.trace, prof.timeline,
                              {"prefill": cycles, "decode": cycles * decode_steps})
    return CycleMeasurement(cycles, decode_steps, decode_context, tuple(phases), time.perf_counter() - wall0,
                            tuple(notes))
