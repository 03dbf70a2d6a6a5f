"""Joules per kernel class inside a real generate, by running one class twice (marginal energy).

The window regression (kernelprof.attribution.kernel_regression) cannot split an LLM's decode step into
kernel classes: every 20 ms power window holds the same mix of ~4 steps, so the classes' busy times
move together and their powers are not identifiable (8B, batch 8, H200, 2026-12-04: no class
identifiable in either phase). This asks the GPU instead. Each variant runs the same requests with
every kernel of one class launched twice (`Llama.set_duplicate`; the outputs are bit-identical), and
the extra joules per prefill or per decode step over the baseline are that class's joules in this
program, in the power state its neighbours leave it in (the board's idle floor during its time
included, as the regression's "W busy" includes it).

Two baselines bracket the variants (baseline, each class, baseline). Each variant is compared with
the baseline interpolated to its place in that order, so a steady drift between the two (the card
warming) cancels; the baselines' difference is the repeatability, and a marginal within twice it is
flagged as not resolved. A variant whose phase ran
at another mean SM clock than the baseline (> 3%) is flagged: a doubled class may move the power
limiter, and then its marginal mixes two states. The marginals need not add up to the baseline;
what is left (copies, launch gaps, the kernels no class holds) is shown as unexplained, never spread
over the classes.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from kernelprof.errors import UsageError
from kernelprof.methods.llm.result import LLMResult

CLOCK_SHIFT_PCT = 3.0
PHASES = ("prefill", "decode")


@dataclass(frozen=True)
class ClassMarginal:
    """One class in one phase: what running it twice added, per prefill or per decode step."""

    kernel_class: str
    phase: str                          # "prefill" | "decode"
    energy_per_call_j: float | None     # extra J per call with the class run twice
    time_per_call_s: float | None       # extra s per call
    share_pct: float | None             # energy_per_call_j over the baseline's J per call
    clock_shift_pct: float | None       # the variant's mean SM clock in the phase vs the baselines'
    flags: tuple[str, ...] = ()         # "not_resolved", "clock_shift"

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["flags"] = list(self.flags)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClassMarginal:
        return cls(**{**{f.name: d.get(f.name) for f in fields(cls)}, "flags": tuple(d.get("flags", ()))})


@dataclass(frozen=True)
class MarginalResult:
    model: str
    batch: int
    input_len: int
    output_len: int
    gpu_name: str
    baseline_j_per_call: dict[str, float]        # phase -> mean of the two baselines
    baseline_time_per_call_s: dict[str, float]
    repeat_pct: dict[str, float]                 # phase -> |second - first baseline| / mean, in %
    marginals: tuple[ClassMarginal, ...]
    runs: dict[str, LLMResult]                   # "baseline-0", each class, "baseline-1"

    def unexplained_j_per_call(self, phase: str) -> float | None:
        """The baseline's J per call less every class's marginal in the phase."""
        base = self.baseline_j_per_call.get(phase)
        ms = [m.energy_per_call_j for m in self.marginals if m.phase == phase]
        if base is None or not ms or any(m is None for m in ms):
            return None
        return base - sum(ms)

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(marginals=[m.to_json() for m in self.marginals], runs={k: r.to_json() for k, r in self.runs.items()})
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MarginalResult:
        return cls(d["model"], d["batch"], d["input_len"], d["output_len"], d["gpu_name"], dict(d["baseline_j_per_call"]),
                   dict(d["baseline_time_per_call_s"]), dict(d["repeat_pct"]),
                   tuple(ClassMarginal.from_json(m) for m in d["marginals"]),
                   {k: LLMResult.from_json(r) for k, r in d["runs"].items()})


def _per_call(r: LLMResult, phase: str) -> tuple[float | None, float | None, float | None]:
    """(J per call, s per call, mean SM MHz) of one phase of one run."""
    p = r.phase(phase)
    if p is None or not p.calls or p.energy_inrun_j is None:
        return None, None, None
    return p.energy_inrun_j / p.calls, p.time_s / p.calls, p.sm_clock_inrun_mhz


def compose(runs: dict[str, LLMResult], classes: tuple[str, ...]) -> MarginalResult:
    """The marginals from measured runs: "baseline-0", one per class in `classes` order (the order they ran
    in), "baseline-1" (no GPU needed)."""
    b0, b1 = runs["baseline-0"], runs["baseline-1"]
    base_j, base_t, repeat, base_mhz, ends = {}, {}, {}, {}, {}
    for ph in PHASES:
        (j0, t0, c0), (j1, t1, c1) = _per_call(b0, ph), _per_call(b1, ph)
        if j0 is None or j1 is None:
            continue
        ends[ph] = (j0, t0, j1, t1)
        base_j[ph], base_t[ph] = (j0 + j1) / 2, (t0 + t1) / 2
        repeat[ph] = 100.0 * abs(j1 - j0) / base_j[ph]
        base_mhz[ph] = (c0 + c1) / 2 if c0 and c1 else None
    marginals = []
    for i, cls in enumerate(classes):
        w = (i + 1) / (len(classes) + 1)  # the variant's place between the two baselines
        for ph in base_j:
            j, t, mhz = _per_call(runs[cls], ph)
            if j is None:
                marginals.append(ClassMarginal(cls, ph, None, None, None, None, ("no_reading",)))
                continue
            j0, t0, j1, t1 = ends[ph]
            dj, dt = j - (j0 + w * (j1 - j0)), t - (t0 + w * (t1 - t0))
            shift = 100.0 * (mhz / base_mhz[ph] - 1.0) if mhz and base_mhz.get(ph) else None
            flags = []
            if abs(dj) < 2.0 * repeat[ph] / 100.0 * base_j[ph]:
                flags.append("not_resolved")
            if shift is not None and abs(shift) > CLOCK_SHIFT_PCT:
                flags.append("clock_shift")
            marginals.append(ClassMarginal(cls, ph, dj, dt, 100.0 * dj / base_j[ph], shift, tuple(flags)))
    return MarginalResult(b0.model, b0.batch, b0.input_len, b0.output_len, b0.gpu_name, base_j, base_t, repeat,
                          tuple(marginals), dict(runs))


def measure_class_marginals(model_name: str, batch: int, input_len: int, output_len: int, *,
                            classes: tuple[str, ...] | None = None, min_inrun_s: float = 6.0, device: int = 0,
                            seed: int = 0, gemm: str = "cublas") -> MarginalResult:
    """Baseline, each class run twice, baseline again: `kernelprof llm` optimized in-run, one model reused."""
    from kernelprof.gpu.devices import require_gpu
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.generate import GenerateShape, build_model, check_fits
    from kernelprof.methods.llm.model import DUPLICABLE_CLASSES
    from kernelprof.methods.llm.run import run_llm
    from kernelprof.validate import check_llm_request

    classes = tuple(classes or DUPLICABLE_CLASSES)
    bad = [c for c in classes if c not in DUPLICABLE_CLASSES]
    if bad or not classes:
        raise UsageError(f"classes must be some of {', '.join(DUPLICABLE_CLASSES)}, got {list(classes)}")
    check_llm_request(model_name, batch, input_len, output_len, "optimized")
    require_gpu("kernelprof llm --class-marginals")
    import torch

    cfg, shape = get_config(model_name), GenerateShape(batch, input_len, output_len)
    check_fits(cfg, shape, "optimized", device)
    with torch.cuda.device(device):
        model = build_model(cfg, shape, "optimized", gemm=gemm, seed=seed)

    def one() -> LLMResult:  # graphs are captured inside run_llm, after set_duplicate
        return run_llm(model_name, batch, input_len, output_len, mode="optimized", gemm=gemm, steady=False,
                       min_inrun_s=min_inrun_s, device=device, seed=seed, model=model)

    runs = {"baseline-0": one()}
    for cls in classes:
        model.set_duplicate(cls)
        runs[cls] = one()
    model.set_duplicate(None)
    runs["baseline-1"] = one()
    return compose(runs, classes)
