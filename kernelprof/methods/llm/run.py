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
The methods must agree; the result carries both and their gap, and the paper's estimate
(TDP / peak FLOP/s x FLOPs) per phase beside them.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from kernelprof.errors import UsageError
from kernelprof.estimates.energy import paper_estimate_j
from kernelprof.methods.llm.generate import (PREFILL_GRAPH_MAX_TOKENS, DecodeGraph, GenerateShape, PrefillGraph, build_model,
                                     check_fits, generate, random_prompt, use_prefill_graph)
from kernelprof.methods.llm.config import LlamaConfig, get_config
from kernelprof.methods.llm.model import decode_step_flops, decode_step_min_bytes, prefill_flops, prefill_min_bytes


@dataclass(frozen=True)
class PhaseEnergy:
    """One phase of the requests: time, in-run and steady-state energy, and the paper's estimate."""

    name: str                    # "prefill" | "decode"
    time_s: float                # in-run, summed over the repeated requests
    tokens: int                  # tokens processed in the phase, summed over requests
    flops: float
    energy_inrun_j: float | None
    mean_power_inrun_w: float | None
    steady_power_w: float | None
    energy_steady_j: float | None  # steady mean power x in-run time
    gap_pct: float | None          # (in-run - steady) / steady
    paper_estimate_j: float | None
    flags: tuple[str, ...] = ()
    # The phase fit (kernelprof.attribution.phase_fit): one mean power per phase kind fitted to the samples,
    # which reads phases shorter than a sample without the neighbours' power leaking in.
    power_fit_w: float | None = None
    power_fit_se_w: float | None = None
    energy_fit_j: float | None = None
    gap_fit_pct: float | None = None   # (fit - steady) / steady
    # Steady-state time of the same work (one prefill, or one decode step at the middle context)
    # times the calls in the phase, over the in-run time: below ~0.9 the run's GPU waited on the host.
    steady_time_per_call_s: float | None = None
    busy_fraction: float | None = None
    # The cycled steady state (kernelprof.methods.llm.cycle): the phase measured in the alternation of the
    # run, by integration and by the fit; composed with the in-run time like the looped-alone one.
    cycle_power_w: float | None = None
    cycle_power_fit_w: float | None = None
    cycle_power_fit_se_w: float | None = None
    cycle_time_per_call_s: float | None = None
    energy_cycle_j: float | None = None        # cycle fit power (else integrated) x in-run time
    gap_cycle_pct: float | None = None         # in-run integrated vs cycle integrated, x in-run time
    gap_cycle_fit_pct: float | None = None     # in-run fit vs cycle fit, x in-run time
    # Looped alone, composed per call instead of per second: (in-run energy / calls) vs the loop's
    # energy per call. Where busy_fraction is above 1 the run ran the phase faster than the loop, at
    # another clock; steady power x in-run time then mixes the two states, energy per call does not.
    steady_energy_per_call_j: float | None = None
    gap_per_call_pct: float | None = None      # in-run integrated, per call, vs looped alone per call
    gap_fit_per_call_pct: float | None = None  # in-run fit, per call, vs looped alone per call
    # Mean SM clock during the phase: in the run, looped alone, and cycled (10 Hz readings).
    sm_clock_inrun_mhz: float | None = None
    sm_clock_steady_mhz: float | None = None
    sm_clock_cycle_mhz: float | None = None

    @property
    def j_per_token_inrun(self) -> float | None:
        return None if self.energy_inrun_j is None else self.energy_inrun_j / self.tokens

    @property
    def j_per_token_steady(self) -> float | None:
        return None if self.energy_steady_j is None else self.energy_steady_j / self.tokens


@dataclass(frozen=True)
class LLMResult:
    model: str
    mode: str
    gemm: str
    batch: int
    input_len: int
    output_len: int
    requests: int           # generate calls measured in-run (each a batch of `batch` requests)
    gpu_name: str
    phases: tuple[PhaseEnergy, ...]
    total_energy_inrun_j: float | None
    total_time_s: float
    counter_energy_j: float | None
    counter_vs_samples_pct: float | None
    j_per_request_inrun: float | None
    paper_ratio: float | None  # measured total / paper estimate
    flags: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    wall_s: float = 0.0
    paper_peak_convention: str = "headline"  # files without the key were written with the dense peak

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for p, ph in zip(d["phases"], self.phases):
            p["j_per_token_inrun"] = ph.j_per_token_inrun
            p["j_per_token_steady"] = ph.j_per_token_steady
        return d


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

    from kernelprof.validate import check_llm_request

    check_llm_request(model_name, batch, input_len, output_len, mode)
    from kernelprof.gpu.devices import gpu_facts, require_gpu
    from kernelprof.methods.llm.cycle import cycle_profile_path, measure_cycle, summarize_phases
    from kernelprof.methods.steady_state import MeasureConfig, measure_kernel
    from kernelprof.attribution.phase_fit import fit_profile_phases
    from kernelprof.profiler import Profiler
    from kernelprof.estimates.datasheets import datasheet_for

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
    with torch.cuda.device(device):
        if model is None:
            model = build_model(cfg, shape, mode, gemm=gemm, seed=seed)
        else:
            model.resize_cache(batch, shape.max_len)
        prompt = random_prompt(cfg, shape, seed=seed)
        pgraph = PrefillGraph(model, batch, input_len) if use_prefill_graph(shape, mode) else None
        if pgraph is not None:
            notes.append(f"prefill replayed from a CUDA graph ({batch * input_len} tokens <= "
                         f"{PREFILL_GRAPH_MAX_TOKENS}: launching it from Python would leave the GPU waiting)")
        graph = DecodeGraph(model, input_len, shape.decode_steps) if mode == "optimized" and shape.decode_steps else None
        if warmup == "full":
            # Warm-up request: compiles and autotunes; a second one, warm, times a request to choose the
            # repeat count (timing the first let Triton's autotuning cut a 2 s in-run target to 1 request).
            generate(model, prompt, shape, mode, graph=graph, prefill_graph=pgraph)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            generate(model, prompt, shape, mode, graph=graph, prefill_graph=pgraph)
            torch.cuda.synchronize()
            one = time.perf_counter() - t0
            requests = int(max(1, min(max_requests, round(min_inrun_s / max(one, 1e-3)))))
        else:
            if pgraph is None:
                model.prefill(prompt)  # compiles, autotunes and allocates the activations at this shape
            torch.cuda.synchronize()
            requests = 1
            notes.append("warm-up: one prefill of the batch and the decode graph's capture; one request measured")
        with Profiler(gpus=[device], kernels=kernel_slices) as prof:
            for _ in range(requests):
                generate(model, prompt, shape, mode, prof=prof, graph=graph, prefill_graph=pgraph)
        res = prof.result()
        fit = fit_profile_phases(prof.trace, prof.timeline, prof.window, prof.sensor_profiles[0])
        if fit is not None:
            notes += [f"phase fit: {n}" for n in fit.notes]
            if fit.conservation_pct is not None:
                notes.append(f"phase fit: residual {fit.residual_rms_w:.0f} W rms per sample over {fit.readings} "
                             f"samples; fitted window energy {fit.conservation_pct:+.2f}% vs the samples' integral")
        if profile_path:
            prof.save(profile_path, extra={"llm": {"model": model_name, "mode": mode, "batch": batch,
                                                   "input_len": input_len, "output_len": output_len,
                                                   "requests": requests}})

        # Steady state: each phase looped alone (sustained), and the phases cycled as in the run.
        steady_w: dict[str, float | None] = {"prefill": None, "decode": None}
        steady_t: dict[str, float | None] = {"prefill": None, "decode": None}
        steady_clock: dict[str, float | None] = {"prefill": None, "decode": None}
        cycle = None
        if steady:
            mcfg = MeasureConfig(max_wall_s=8.0, seed=seed)
            prefill_fn = pgraph.replay if pgraph is not None else (lambda: model.prefill(prompt))
            m = measure_kernel(prefill_fn, flops=prefill_flops(cfg, batch, input_len),
                               min_bytes=prefill_min_bytes(cfg, batch, input_len), name="prefill", device=device,
                               config=mcfg)
            steady_w["prefill"], steady_t["prefill"], steady_clock["prefill"] = \
                m.mean_power_w, m.time_per_call_s, m.sm_clock_mhz
            if shape.decode_steps:
                mid = input_len + shape.decode_steps // 2
                if mode == "optimized":
                    fixed = DecodeGraph(model, mid, 1, advance=False)
                    fixed.reset(torch.zeros(batch, dtype=torch.long, device=model.device))
                    step = fixed.replay
                else:
                    tok = torch.zeros(batch, dtype=torch.long, device=model.device)

                    def step() -> None:
                        pos = torch.tensor([mid], device=model.device)
                        lengths = torch.full((batch,), mid + 1, dtype=torch.int32, device=model.device)
                        model.decode_step(tok, pos, lengths).argmax(-1)
                m = measure_kernel(step, flops=decode_step_flops(cfg, batch, mid + 1),
                                   min_bytes=decode_step_min_bytes(cfg, batch, mid + 1), name="decode-step",
                                   device=device, config=mcfg)
                steady_w["decode"], steady_t["decode"], steady_clock["decode"] = \
                    m.mean_power_w, m.time_per_call_s, m.sm_clock_mhz
                notes.append(f"steady decode measured at context {mid + 1} (the middle of the decode range)")
                if cycle_reference:
                    cycle = measure_cycle(prefill_fn, step, shape.decode_steps, max(3, requests),
                                          decode_context=mid + 1, device=device,
                                          profile_path=cycle_profile_path(profile_path) if profile_path else None,
                                          extra={"model": model_name, "mode": mode, "batch": batch,
                                                 "input_len": input_len, "output_len": output_len})
                    notes += [f"cycled: {n}" for n in cycle.notes]
                    notes.append(f"cycled steady state: {cycle.cycles} x (one prefill, {shape.decode_steps} decode "
                                 f"steps at context {mid + 1}) back to back, so each phase runs in the power state "
                                 "the other leaves it in; looped alone, a phase above the power limit settles at the cap")

    sheet = datasheet_for(facts.name)
    phases = []
    inrun = summarize_phases(res.phases, fit, prof.trace, prof.timeline,
                             {"prefill": requests, "decode": requests * shape.decode_steps})
    for summary in inrun:
        name, t, e, calls = summary.name, summary.time_s, summary.energy_j, summary.calls
        if name == "prefill":
            tokens = requests * batch * input_len
            flops = requests * prefill_flops(cfg, batch, input_len)
        else:
            tokens = requests * batch * shape.decode_steps
            flops = requests * sum(decode_step_flops(cfg, batch, input_len + i + 1) for i in range(shape.decode_steps))
        sw = steady_w[name]
        es = None if sw is None else sw * t
        gap = _pct(e, es)
        paper = paper_estimate_j(flops, "bf16", sheet)  # the paper's convention: headline peak
        flags = set(summary.flags)
        ef = summary.energy_fit_j
        gap_fit = _pct(ef, es)
        st = steady_t[name]
        busy = None if st is None or t <= 0 else calls * st / t
        e_call = None if sw is None or st is None else sw * st
        if busy is not None and busy < 0.9:
            flags.add("host_bound")
            notes.append(f"{name}: the looped phase takes {busy:.0%} of its in-run time, so in the run the GPU "
                         "waited on the host for the rest; steady power x in-run time overstates that phase")
        cp = cycle.phase(name) if cycle is not None else None
        c_int = None if cp is None or cp.power_w is None else cp.power_w * t
        c_fit = None if cp is None or cp.power_fit_w is None else cp.power_fit_w * t
        phases.append(PhaseEnergy(
            name, t, tokens, float(flops), e, None if e is None else e / t, sw, es, gap, paper, tuple(sorted(flags)),
            power_fit_w=summary.power_fit_w, power_fit_se_w=summary.power_fit_se_w,
            energy_fit_j=ef, gap_fit_pct=gap_fit, steady_time_per_call_s=st, busy_fraction=busy,
            steady_energy_per_call_j=e_call, gap_per_call_pct=_pct(None if e is None else e / calls, e_call),
            gap_fit_per_call_pct=_pct(None if ef is None else ef / calls, e_call),
            cycle_power_w=None if cp is None else cp.power_w, cycle_power_fit_w=None if cp is None else cp.power_fit_w,
            cycle_power_fit_se_w=None if cp is None else cp.power_fit_se_w,
            cycle_time_per_call_s=None if cp is None else cp.time_per_call_s,
            energy_cycle_j=c_fit if c_fit is not None else c_int,
            gap_cycle_pct=_pct(e, c_int), gap_cycle_fit_pct=_pct(ef, c_fit),
            sm_clock_inrun_mhz=summary.sm_clock_mhz,
            sm_clock_steady_mhz=steady_clock[name], sm_clock_cycle_mhz=None if cp is None else cp.sm_clock_mhz))
    total_e = res.total.energy_j
    paper_total = sum(p.paper_estimate_j for p in phases if p.paper_estimate_j) or None
    e_phases = sum(p.energy_inrun_j for p in phases if p.energy_inrun_j is not None)
    return LLMResult(
        model=model_name, mode=mode, gemm=gemm, batch=batch, input_len=input_len, output_len=output_len,
        requests=requests, gpu_name=facts.name, phases=tuple(phases), total_energy_inrun_j=total_e,
        total_time_s=res.total.time_s, counter_energy_j=res.total.energy_counter_j,
        counter_vs_samples_pct=res.total.counter_diff_pct,
        j_per_request_inrun=None if not e_phases else e_phases / (requests * batch),
        paper_ratio=None if not paper_total or not e_phases else e_phases / paper_total,
        flags=tuple(sorted({f.code for f in res.total.flags})),
        notes=tuple(notes) + tuple(res.notes), wall_s=time.perf_counter() - wall0)


def _pct(x: float | None, ref: float | None) -> float | None:
    return None if x is None or not ref else 100.0 * (x - ref) / ref


def parse_mode(mode: str) -> list[str]:
    if mode == "both":
        return ["optimized", "eager"]
    if mode not in ("optimized", "eager"):
        raise UsageError(f"--mode must be optimized, eager or both, got {mode!r}")
    return [mode]
