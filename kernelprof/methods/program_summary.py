"""What a `kernelprof run` recording says: whole-run energy and its idle/dynamic split, energy per
NVTX range (nested, instances of one path summed) and the kernel-class regression, from a run file,
so that `kernelprof run` and `kernelprof report` print the same thing on any machine."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from kernelprof.attribution.kernel_regression import KernelAttribution

MIN_REGRESSION_S = 5.0  # below ~250 windows most classes cannot be told apart (tests/test_kernel_regression.py)


@dataclass(frozen=True)
class RangeEnergy:
    """All instances of one range path: integrated buffered samples (short ranges read their windows' mean)."""

    path: str  # below the program phase, e.g. "train/step/forward"
    name: str
    depth: int  # 0 for a top-level range of the program
    instances: int
    time_s: float
    energy_j: float | None
    mean_power_w: float | None
    flags: tuple[str, ...]


@dataclass(frozen=True)
class GPUEnergy:
    gpu: int
    energy_j: float | None
    mean_power_w: float | None


@dataclass(frozen=True)
class ProgramSummary:
    command: str
    status: str
    exit_code: int
    time_s: float
    energy_j: float | None
    mean_power_w: float | None
    idle_baseline_w: float | None  # mean power over the idle baseline before the program
    idle_j: float | None  # idle_baseline_w x the program's time
    dynamic_j: float | None  # energy_j - idle_j
    gpus: tuple[GPUEnergy, ...]
    ranges: tuple[RangeEnergy, ...]
    kernel_attribution: tuple[KernelAttribution, ...]  # one per GPU with kernels
    flags: tuple[str, ...]
    notes: tuple[str, ...]
    warmup_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ProgramSummary":
        d = dict(d)
        return cls(gpus=tuple(GPUEnergy(**g) for g in d.pop("gpus")),
                   ranges=tuple(RangeEnergy(**{**r, "flags": tuple(r["flags"])}) for r in d.pop("ranges")),
                   kernel_attribution=tuple(KernelAttribution.from_json(k) for k in d.pop("kernel_attribution")),
                   flags=tuple(d.pop("flags")), notes=tuple(d.pop("notes")), **d)


def attribute_program(trace: Any, timeline: Any, kernels: Any, profiles: Sequence[Any], gpus: Sequence[int],
                      warmup_s: float, overrides: Sequence[Any] = (), power_limits_w: dict[str, float] | None = None
                      ) -> tuple[list[KernelAttribution], list[str]]:
    """The kernel-class regression over the program's span after warm-up, and notes on what it lacks
    (`power_limits_w` {uuid: W}: note a class fitted above its GPU's limit)."""
    import numpy as np

    from kernelprof.attribution.kernel_regression import attribute_kernels

    prog = next((i for i in timeline.intervals if i.kind == "program"), None)
    if prog is None or kernels is None:
        return [], []
    notes = []
    inside = (kernels.start_ns >= prog.t0_ns) & (kernels.start_ns < prog.t1_ns)
    traced = {g.uuid for g in trace.gpus}
    profiled = [d for d, u in kernels.device_uuids.items() if u in traced] or list(gpus)
    mine = inside & np.isin(kernels.device, profiled)
    if not mine.any():
        notes.append("the program launched no GPU kernels on the profiled GPUs: the energy is the GPU idling")
    elsewhere = sorted(set(kernels.device[inside & ~np.isin(kernels.device, profiled)].tolist()))
    if elsewhere:
        notes.append(f"{int(np.sum(inside & ~mine))} kernels ran on cuda:{elsewhere}, which were not profiled "
                     "(add them with --gpus)")
    t0 = prog.t0_ns + int(warmup_s * 1e9)
    if t0 >= prog.t1_ns:
        return [], notes + [f"the program ran {prog.duration_s:.1f} s, not longer than --warmup-s {warmup_s:g}: "
                            "no kernel attribution"]
    span_s = (prog.t1_ns - t0) / 1e9
    if span_s < MIN_REGRESSION_S:
        notes.append(f"kernel regression over {span_s:.1f} s (~{span_s / 0.02:.0f} sample windows): under "
                     f"{MIN_REGRESSION_S:.0f} s most classes cannot be told apart; run the program longer")
    if not mine.any():
        return [], notes
    try:
        fits = attribute_kernels(trace, kernels, (t0, prog.t1_ns), profiles, overrides=overrides,
                                 power_limits_w=power_limits_w)
    except ValueError as err:
        return [], notes + [f"no kernel attribution: {err}"]
    return fits, notes


def _ranges(phases: Sequence[Any]) -> tuple[RangeEnergy, ...]:
    prefix = "program/"
    by_path: dict[str, list[Any]] = {}
    for p in phases:
        if p.path.startswith(prefix):
            by_path.setdefault(p.path[len(prefix):], []).append(p)
    out = []
    for path, ps in by_path.items():  # first-occurrence order, which nests parents before children
        t = sum(p.time_s for p in ps)
        e = None if any(p.energy_j is None for p in ps) else float(sum(p.energy_j for p in ps))
        codes = tuple(sorted({f.code for p in ps for f in p.flags}))
        out.append(RangeEnergy(path, ps[0].name, ps[0].depth - 1, len(ps), t, e,
                               None if e is None or t <= 0 else e / t, codes))
    return tuple(out)


def summarize_program(path: str | Path) -> ProgramSummary:
    """The summary of a saved `kernelprof run` file (attribution recomputed from its trace)."""
    from kernelprof.errors import RunFileError
    from kernelprof.profiler import load_profile, load_profile_run

    inputs = load_profile_run(path)
    info = inputs.payload.get("program")
    if not isinstance(info, dict):
        raise RunFileError(f"{path} is a profile run, not one from `kernelprof run`")
    res = load_profile(path)
    try:
        prog = res.phase("program")
    except KeyError as exc:
        raise RunFileError(f"{path} has no program phase") from exc
    idle = next((p for p in res.phases if p.path == "(idle baseline)"), None)
    idle_w = idle.mean_power_w if idle is not None else None
    idle_j = idle_w * prog.time_s if idle_w is not None else None
    outcome = info.get("outcome", {})
    fits = tuple(KernelAttribution.from_json(k) for k in inputs.payload.get("kernel_attribution") or [])
    return ProgramSummary(
        info.get("command", "?"), outcome.get("status", "?"), int(outcome.get("exit_code", 0)), prog.time_s,
        prog.energy_j, prog.mean_power_w, idle_w, idle_j,
        None if idle_j is None or prog.energy_j is None else prog.energy_j - idle_j,
        tuple(GPUEnergy(g.gpu, g.energy_j, g.mean_power_w) for g in prog.gpus), _ranges(res.phases), fits,
        tuple(info.get("flags", ())), tuple(info.get("notes", ())), float(info.get("warmup_s", 0.0)))
