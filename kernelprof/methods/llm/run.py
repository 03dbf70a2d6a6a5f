"""`kernelprof llm`: joules per request, per prefill token and per decode token, by two methods.

- in-run: the Profiler's CUDA-event phases of real generate calls, integrated over the buffered
  power samples;
- steady-state: the prefill of the same batch looped alone, and one decode step at the middle
  context length looped alone (a fixed-position CUDA graph), each measured by `measure_kernel`;
  their mean power times the in-run phase times gives each phase's energy;
- the cycled steady state (`kernelprof.methods.llm.cycle`): one prefill and the decode steps at that fixed
  context, back to back, so each phase runs in the power state the other leaves it in. Looped
  alone, a phase that draws more than the power limit settles at the cap, a state a short in-run
  phase never reaches; the mean SM clock of each phase in each measurement shows which state it was.
The methods must agree; the result carries each method's estimate per phase (`result.PhaseEstimate`,
compared by `result.gap_pct`), and the paper's estimate (TDP / peak FLOP/s x FLOPs) beside them.

`run_llm` reads as its three steps: measure in-run (`_measure_inrun`), measure the references
(`_measure_steady`, `_measure_cycled`), compose (`_compose`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable

from kernelprof.errors import UsageError
from kernelprof.estimates.energy import paper_estimate_j
from kernelprof.methods.llm.config import LlamaConfig, get_config
from kernelprof.methods.llm.cycle import CycleMeasurement, PhaseSummary
from kernelprof.methods.llm.generate import (PREFILL_GRAPH_MAX_TOKENS, DecodeGraph, GenerateShape, graphed_decode, PrefillGraph, build_model,
                                     check_fits, generate, random_prompt, use_prefill_graph)
from kernelprof.methods.llm.model import decode_step_flops, decode_step_min_bytes, prefill_flops, prefill_min_bytes
# The result types live in `result` (no torch, for `report`); imported here for the callers of run_llm.
from kernelprof.methods.llm.result import LLMResult, PhaseEnergy, PhaseEstimate, gap_pct  # noqa: F401


@dataclass(frozen=True)
class _Setup:
    """The model at this request shape, ready to generate (CUDA graphs captured where the mode uses them)."""

    cfg: LlamaConfig
    shape: GenerateShape
    mode: str
    model: Any
    prompt: Any
    prefill_graph: Any      # PrefillGraph | None
    decode_graph: Any       # DecodeGraph | None
    device: int

    def generate(self, prof: Any = None) -> None:
        generate(self.model, self.prompt, self.shape, self.mode, prof=prof, graph=self.decode_graph,
                 prefill_graph=self.prefill_graph)

    @property
    def prefill(self) -> Callable[[], Any]:
        """One prefill of the batch: the graph's replay itself where there is one (looped, so no extra call)."""
        if self.prefill_graph is not None:
            return self.prefill_graph.replay
        return lambda: self.model.prefill(self.prompt)

    @property
    def mid_context(self) -> int:
        """The fixed position of the looped and cycled decode step: the middle of the decode range."""
        return self.shape.input_len + self.shape.decode_steps // 2


@dataclass(frozen=True)
class _InRun:
    requests: int
    result: Any                         # the Profiler's ProfileResult
    phases: tuple[PhaseSummary, ...]    # per phase kind: time, integrated and fitted energy, clock


@dataclass(frozen=True)
class _References:
    steady: dict[str, Any]              # phase name -> measure_kernel's measurement, looped alone
    cycle: CycleMeasurement | None


def run_llm(model_name: str, batch: int, input_len: int, output_len: int, *, mode: str = "optimized",
            gemm: str = "cublas", steady: bool = True, min_inrun_s: float = 2.0, max_requests: int = 20,
            device: int = 0, seed: int = 0, profile_path: str | None = None, model: Any = None,
            warmup: str = "full", kernel_slices: bool = False, cycle_reference: bool = True) -> LLMResult:
    """Measure one batched generate configuration; optionally save the profile run to `profile_path`.

    `model`: a `Llama` of this config and mode to reuse (its KV cache is resized to this shape),
    as a workload's bins do. `warmup`: "full" runs one whole request first (and times it to choose
    the repeat count for `min_inrun_s`); "prefill" runs one full-batch prefill (the decode graph's
    capture warms the decode), for long requests where a whole warm-up request would double the
    cost, and measures one request. A batch-1 prefill is not enough: an H100 workload run's first
    44 x 4096-token prefill then sat 1.5 s at idle power inside the measured phase while its
    activations were first allocated. `kernel_slices`: also record GPU kernels (CUPTI) for the
    Perfetto trace; tracing perturbs timing a little. `cycle_reference` (with `steady`): also measure
    each phase cycled with the other as in the run (`kernelprof.methods.llm.cycle`), the reference that holds
    for phases shorter than the power limiter's response.
    """
    import torch

    from kernelprof.gpu.devices import gpu_facts, require_gpu
    from kernelprof.validate import check_llm_request

    check_llm_request(model_name, batch, input_len, output_len, mode)
    require_gpu("kernelprof llm")
    if warmup not in ("full", "prefill"):
        raise UsageError(f"warmup must be 'full' or 'prefill', got {warmup!r}")
    wall0 = time.perf_counter()
    cfg: LlamaConfig = get_config(model_name)
    shape = GenerateShape(batch, input_len, output_len)
    if model is None:
        check_fits(cfg, shape, mode, device)
    facts = gpu_facts(device)
    notes: list[str] = []
    meta = {"model": model_name, "mode": mode, "batch": batch, "input_len": input_len, "output_len": output_len}
    with torch.cuda.device(device):
        setup = _prepare(cfg, shape, mode, gemm, seed, model, device, notes)
        requests = _warm_up(setup, warmup, min_inrun_s, max_requests, notes)
        inrun = _measure_inrun(setup, requests, kernel_slices, profile_path, meta, notes)
        refs = _References({}, None)
        if steady:
            looped, step = _measure_steady(setup, seed, notes)
            cycle = _measure_cycled(setup, step, requests, profile_path, meta, notes) \
                if cycle_reference and step is not None else None
            refs = _References(looped, cycle)
    return _compose(model_name, gemm, facts.name, setup, inrun, refs, notes, time.perf_counter() - wall0)


def _prepare(cfg: LlamaConfig, shape: GenerateShape, mode: str, gemm: str, seed: int, model: Any, device: int,
             notes: list[str]) -> _Setup:
    """Build (or resize) the model, make the prompt, capture the prefill and decode graphs."""
    if model is None:
        model = build_model(cfg, shape, mode, gemm=gemm, seed=seed)
    else:
        model.resize_cache(shape.batch, shape.max_len)
    prompt = random_prompt(cfg, shape, seed=seed)
    pgraph = PrefillGraph(model, shape.batch, shape.input_len) if use_prefill_graph(shape, mode) else None
    if pgraph is not None:
        notes.append(f"prefill replayed from a CUDA graph ({shape.batch * shape.input_len} tokens <= "
                     f"{PREFILL_GRAPH_MAX_TOKENS}: launching it from Python would leave the GPU waiting)")
    graph = DecodeGraph(model, shape.input_len, shape.decode_steps) if graphed_decode(mode) and shape.decode_steps else None
    return _Setup(cfg, shape, mode, model, prompt, pgraph, graph, device)


def _warm_up(setup: _Setup, warmup: str, min_inrun_s: float, max_requests: int, notes: list[str]) -> int:
    """Compile, autotune and allocate at this shape; return the requests to measure in-run."""
    import torch

    if warmup == "full":
        # Warm-up request: compiles and autotunes; a second one, warm, times a request to choose the
        # repeat count (timing the first let Triton's autotuning cut a 2 s in-run target to 1 request).
        setup.generate()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        setup.generate()
        torch.cuda.synchronize()
        one = time.perf_counter() - t0
        return int(max(1, min(max_requests, round(min_inrun_s / max(one, 1e-3)))))
    if setup.prefill_graph is None:
        setup.model.prefill(setup.prompt)  # compiles, autotunes and allocates the activations at this shape
    torch.cuda.synchronize()
    notes.append("warm-up: one prefill of the batch and the decode graph's capture; one request measured")
    return 1


def _measure_inrun(setup: _Setup, requests: int, kernel_slices: bool, profile_path: str | None,
                   meta: dict[str, Any], notes: list[str]) -> _InRun:
    """The requests under the Profiler; each phase kind integrated over the samples and by the phase fit."""
    from kernelprof.attribution.phase_fit import fit_profile_phases
    from kernelprof.methods.llm.cycle import summarize_phases
    from kernelprof.profiler import Profiler

    with Profiler(gpus=[setup.device], kernels=kernel_slices) as prof:
        for _ in range(requests):
            setup.generate(prof)
    res = prof.result()
    fit = fit_profile_phases(prof.trace, prof.timeline, prof.window, prof.sensor_profiles[0])
    if fit is not None:
        notes += [f"phase fit: {n}" for n in fit.notes]
        if fit.conservation_pct is not None:
            notes.append(f"phase fit: residual {fit.residual_rms_w:.0f} W rms per sample over {fit.readings} "
                         f"samples; fitted window energy {fit.conservation_pct:+.2f}% vs the samples' integral")
    if profile_path:
        prof.save(profile_path, extra={"llm": {**meta, "requests": requests}})
    phases = summarize_phases(res.phases, fit, prof.trace, prof.timeline,
                              {"prefill": requests, "decode": requests * setup.shape.decode_steps})
    return _InRun(requests, res, tuple(phases))


def _decode_step(setup: _Setup) -> Callable[[], None]:
    """One decode step at the middle context, repeatable in place (it does not advance the cache)."""
    import torch

    model, batch, mid = setup.model, setup.shape.batch, setup.mid_context
    if graphed_decode(setup.mode):
        fixed = DecodeGraph(model, mid, 1, advance=False)
        fixed.reset(torch.zeros(batch, dtype=torch.long, device=model.device))
        return fixed.replay
    tok = torch.zeros(batch, dtype=torch.long, device=model.device)

    def step() -> None:
        pos = torch.tensor([mid], device=model.device)
        lengths = torch.full((batch,), mid + 1, dtype=torch.int32, device=model.device)
        model.decode_step(tok, pos, lengths).argmax(-1)
    return step


def _measure_steady(setup: _Setup, seed: int, notes: list[str]) -> tuple[dict[str, Any], Callable[[], None] | None]:
    """Each phase looped alone (`measure_kernel`): the prefill of the batch, then (if the request has
    decode steps) one decode step at the middle context. Returns the measurements by phase name
    and that decode step, which the cycled reference reuses."""
    from kernelprof.methods.steady_state import MeasureConfig, measure_kernel

    cfg, batch, input_len = setup.cfg, setup.shape.batch, setup.shape.input_len
    mcfg = MeasureConfig(max_wall_s=8.0, seed=seed)
    out = {"prefill": measure_kernel(setup.prefill, flops=prefill_flops(cfg, batch, input_len),
                                     min_bytes=prefill_min_bytes(cfg, batch, input_len), name="prefill",
                                     device=setup.device, config=mcfg)}
    if not setup.shape.decode_steps:
        return out, None
    step = _decode_step(setup)  # captured after the looped prefill, the order the shipped runs were measured in
    ctx = setup.mid_context + 1
    out["decode"] = measure_kernel(step, flops=decode_step_flops(cfg, batch, ctx),
                                   min_bytes=decode_step_min_bytes(cfg, batch, ctx), name="decode-step",
                                   device=setup.device, config=mcfg)
    notes.append(f"steady decode measured at context {ctx} (the middle of the decode range)")
    return out, step


def _measure_cycled(setup: _Setup, step: Callable[[], None], requests: int, profile_path: str | None,
                    meta: dict[str, Any], notes: list[str]) -> CycleMeasurement:
    """The phases cycled as in the run: one prefill, then the request's decode steps at the middle context."""
    from kernelprof.methods.llm.cycle import cycle_profile_path, measure_cycle

    steps, ctx = setup.shape.decode_steps, setup.mid_context + 1
    cycle = measure_cycle(setup.prefill, step, steps, max(3, requests), decode_context=ctx, device=setup.device,
                          profile_path=cycle_profile_path(profile_path) if profile_path else None, extra=meta)
    notes += [f"cycled: {n}" for n in cycle.notes]
    notes.append(f"cycled steady state: {cycle.cycles} x (one prefill, {steps} decode "
                 f"steps at context {ctx}) back to back, so each phase runs in the power state "
                 "the other leaves it in; looped alone, a phase above the power limit settles at the cap")
    return cycle


def _compose(model_name: str, gemm: str, gpu_name: str, setup: _Setup, inrun: _InRun, refs: _References,
             notes: list[str], wall_s: float) -> LLMResult:
    """Per phase, the in-run measurement with each reference's estimate; the run's totals."""
    from kernelprof.estimates.datasheets import datasheet_for

    sheet = datasheet_for(gpu_name)
    phases = tuple(_compose_phase(s, setup, inrun.requests, refs, sheet, notes) for s in inrun.phases)
    res, requests, shape = inrun.result, inrun.requests, setup.shape
    paper_total = sum(p.paper_estimate_j for p in phases if p.paper_estimate_j) or None
    e_phases = sum(p.energy_inrun_j for p in phases if p.energy_inrun_j is not None)
    return LLMResult(
        model=model_name, mode=setup.mode, gemm=gemm, batch=shape.batch, input_len=shape.input_len,
        output_len=shape.output_len, requests=requests, gpu_name=gpu_name, phases=phases,
        total_energy_inrun_j=res.total.energy_j, total_time_s=res.total.time_s,
        counter_energy_j=res.total.energy_counter_j, counter_vs_samples_pct=res.total.counter_diff_pct,
        j_per_request_inrun=None if not e_phases else e_phases / (requests * shape.batch),
        paper_ratio=None if not paper_total or not e_phases else e_phases / paper_total,
        flags=tuple(sorted({f.code for f in res.total.flags})),
        notes=tuple(notes) + tuple(res.notes), wall_s=wall_s)


def _phase_work(cfg: LlamaConfig, shape: GenerateShape, requests: int, name: str) -> tuple[int, int]:
    """Tokens and FLOPs of a phase over all measured requests (decode: each step at its own context)."""
    b, s = shape.batch, shape.input_len
    if name == "prefill":
        return requests * b * s, requests * prefill_flops(cfg, b, s)
    steps = shape.decode_steps
    return requests * b * steps, requests * sum(decode_step_flops(cfg, b, s + i + 1) for i in range(steps))


def _compose_phase(s: PhaseSummary, setup: _Setup, requests: int, refs: _References, sheet: Any,
                   notes: list[str]) -> PhaseEnergy:
    """One phase: each reference's power x the in-run time (and per call), and the host-bound check."""
    t, e, calls = s.time_s, s.energy_j, s.calls

    def times_t(w: float | None) -> float | None:
        return None if w is None else w * t

    est: dict[str, PhaseEstimate] = {}
    if s.power_fit_w is not None or s.energy_fit_j is not None:
        est["inrun_fit"] = PhaseEstimate("inrun_fit", s.power_fit_w, s.energy_fit_j, s.power_fit_se_w,
                                         None if s.energy_fit_j is None or not calls else s.energy_fit_j / calls)
    m = refs.steady.get(s.name)
    if m is not None:
        sw, st = m.mean_power_w, m.time_per_call_s
        est["steady"] = PhaseEstimate("steady", sw, times_t(sw),
                                      energy_per_call_j=None if sw is None or st is None else sw * st,
                                      time_per_call_s=st, sm_clock_mhz=m.sm_clock_mhz)
    cp = refs.cycle.phase(s.name) if refs.cycle is not None else None
    if cp is not None:  # composed per second only: the per-call comparison is against the looped-alone phase
        est["cycle"] = PhaseEstimate("cycle", cp.power_w, times_t(cp.power_w), time_per_call_s=cp.time_per_call_s,
                                     sm_clock_mhz=cp.sm_clock_mhz)
        est["cycle_fit"] = PhaseEstimate("cycle_fit", cp.power_fit_w, times_t(cp.power_fit_w), cp.power_fit_se_w,
                                         time_per_call_s=cp.time_per_call_s, sm_clock_mhz=cp.sm_clock_mhz)
    tokens, flops = _phase_work(setup.cfg, setup.shape, requests, s.name)
    paper = paper_estimate_j(flops, "bf16", sheet)  # the paper's convention: headline peak
    phase = PhaseEnergy(s.name, t, calls, tokens, float(flops), e, None if e is None else e / t, paper,
                        s.flags, s.sm_clock_mhz, est)
    busy = phase.busy_fraction
    if busy is None or busy >= 0.9:
        return dataclasses.replace(phase, flags=tuple(sorted(s.flags)))
    notes.append(f"{s.name}: the looped phase takes {busy:.0%} of its in-run time, so in the run the GPU "
                 "waited on the host for the rest; steady power x in-run time overstates that phase")
    return dataclasses.replace(phase, flags=tuple(sorted({*s.flags, "host_bound"})))


def parse_mode(mode: str) -> list[str]:
    if mode == "both":
        return ["optimized", "eager"]
    from kernelprof.methods.llm.config import MODES

    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)} or both, got {mode!r}")
    return [mode]
