"""Measuring the ladder's rungs on a GPU (the arithmetic is in `kernelprof.methods.ladder`).

Each kernelprof rung is `run_llm` (in-run Profiler phases) repeated `repeats` times on one model
instance, without the steady-state references (the ladder compares rungs, not methods, and the
references would triple the GPU time). The transformers rungs are `run_hf`. Every finished rung is
appended to a JSONL file at once, so a crash or an out-of-memory rung loses nothing measured and a
rerun with the same settings resumes.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from kernelprof.errors import NotSupportedError, UsageError
from kernelprof.methods.ladder import RungResult, RungSpec, Repeat, link

# Memory headroom for the max-batch rung: the estimate in generate.memory_needed_bytes leaves out the
# allocator's fragmentation and the CUDA graphs' private pools.
MAX_BATCH_CAP = 64


@dataclass(frozen=True)
class LadderConfig:
    model: str = "llama-3.1-8b"
    batch: int = 8
    input_len: int = 512
    output_len: int = 128
    repeats: int = 3
    min_inrun_s: float = 1.0      # per repeat; the phase fit is not used for the comparison
    device: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch < 1 or self.input_len < 1 or self.output_len < 2:
            raise UsageError(f"batch and input must be >= 1 and output >= 2, got {self.batch}, "
                             f"{self.input_len}, {self.output_len}")
        if self.repeats < 1:
            raise UsageError(f"repeats must be >= 1, got {self.repeats}")

    def key(self) -> dict[str, Any]:
        return {"model": self.model, "batch": self.batch, "input_len": self.input_len,
                "output_len": self.output_len, "repeats": self.repeats}

    def store_config(self, gpu_name: str, gpu_uuid: str | None, driver: str | None) -> dict[str, Any]:
        """What a resume must match: these settings on the same GPU and driver."""
        from kernelprof import __version__

        return {"kind": "ladder", **self.key(), "min_inrun_s": self.min_inrun_s, "seed": self.seed,
                "gpu_name": gpu_name, "gpu_uuid": gpu_uuid, "driver": driver, "kernelprof": __version__}


def _repeat_from_llm(r: Any) -> Repeat:
    ph = {p.name: p for p in r.phases}
    n = r.requests * r.batch

    def e(name: str) -> float | None:
        p = ph.get(name)
        return None if p is None or p.energy_inrun_j is None else p.energy_inrun_j / n

    def t(name: str) -> float | None:
        p = ph.get(name)
        return None if p is None else p.time_s / r.requests

    def clk(name: str) -> float | None:
        p = ph.get(name)
        return None if p is None else p.sm_clock_inrun_mhz

    return Repeat(j_per_request=r.j_per_request_inrun, prefill_j_per_request=e("prefill"),
                  decode_j_per_request=e("decode"), time_per_batch_s=(t("prefill") or 0.0) + (t("decode") or 0.0),
                  prefill_time_s=t("prefill"), decode_time_s=t("decode"),
                  sm_clock_prefill_mhz=clk("prefill"), sm_clock_decode_mhz=clk("decode"))


def _repeat_from_hf(h: Any) -> Repeat:
    # transformers has no phase hooks: "prefill" is a separate 1-token generate, decode the rest.
    pre_j = None if h.prefill_energy_j is None else h.prefill_energy_j / h.batch
    dec_j = None if pre_j is None or h.j_per_request is None else h.j_per_request - pre_j
    return Repeat(j_per_request=h.j_per_request, prefill_j_per_request=pre_j, decode_j_per_request=dec_j,
                  time_per_batch_s=h.request_time_s, prefill_time_s=h.prefill_time_s,
                  decode_time_s=h.request_time_s - h.prefill_time_s)


def _measure_kp(cfg: LadderConfig, mode: str, batch: int, model_cache: dict[str, Any],
                gemm: str = "cublas") -> list[Repeat]:
    from kernelprof.methods.llm.generate import GenerateShape, build_model, check_fits
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.run import run_llm

    lcfg = get_config(cfg.model)
    shape = GenerateShape(batch, cfg.input_len, cfg.output_len)
    key = mode if gemm == "cublas" else f"{mode}-{gemm}"
    model = model_cache.get(key)
    if model is None:
        import torch

        model_cache.clear()  # one model's weights at a time (16 GB at 8B)
        gc.collect()
        torch.cuda.empty_cache()  # hand the freed blocks back, so check_fits sees them as free
        check_fits(lcfg, shape, mode, cfg.device)
        model = model_cache[key] = build_model(lcfg, shape, mode, seed=cfg.seed, gemm=gemm)
    reps = []
    for _ in range(cfg.repeats):
        # warmup="full" each time: it repeats a short request to min_inrun_s, so a 0.3 s batch is not
        # read from ~15 power samples of 20 ms.
        r = run_llm(cfg.model, batch, cfg.input_len, cfg.output_len, mode=mode, gemm=gemm, steady=False,
                    min_inrun_s=cfg.min_inrun_s, device=cfg.device, seed=cfg.seed, model=model,
                    warmup="full", cycle_reference=False)
        reps.append(_repeat_from_llm(r))
    return reps


def _measure_hf(cfg: LadderConfig, compiled: bool) -> tuple[list[Repeat], dict[str, Any]]:
    import torch

    from kernelprof.gpu.devices import require_gpu
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.generate import GenerateShape, check_fits
    from kernelprof.methods.llm.hf_baseline import hf_model_for, run_hf

    require_gpu("the transformers rung")
    lcfg = get_config(cfg.model)
    check_fits(lcfg, GenerateShape(cfg.batch, cfg.input_len, cfg.output_len), "eager", cfg.device)
    with torch.cuda.device(cfg.device):
        model = hf_model_for(lcfg, cfg.device, cfg.seed, compiled)  # once: repeats reuse weights and compilation
    reps, ver = [], {}
    for _ in range(cfg.repeats):
        h = run_hf(cfg.model, cfg.batch, cfg.input_len, cfg.output_len, device=cfg.device, seed=cfg.seed,
                   min_inrun_s=cfg.min_inrun_s, compiled=compiled, model=model)
        reps.append(_repeat_from_hf(h))
        ver = {"transformers": h.transformers_version, "attn_implementation": h.attn_implementation}
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return reps, ver


def fp8_output_difference(cfg: LadderConfig, model_cache: dict[str, Any]) -> dict[str, float]:
    """The fp8 rung's cost in outputs: the first token's logits of one prompt batch from the bf16
    model, then from the same weights quantized in place (which then serves the rung)."""
    import torch

    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.generate import GenerateShape, build_model, check_fits, random_prompt

    lcfg = get_config(cfg.model)
    shape = GenerateShape(cfg.batch, cfg.input_len, cfg.output_len)
    model_cache.clear()
    gc.collect()
    torch.cuda.empty_cache()
    check_fits(lcfg, shape, "optimized", cfg.device)
    with torch.cuda.device(cfg.device):
        model = build_model(lcfg, shape, "optimized", seed=cfg.seed)
        prompt = random_prompt(lcfg, shape, seed=cfg.seed)
        ref = model.prefill(prompt).float()
        model.quantize_fp8()
        out = model.prefill(prompt).float()
    model_cache["optimized-fp8"] = model
    return {"logits_rel_err": float((out - ref).norm() / ref.norm()),
            "top1_agreement": float((out.argmax(-1) == ref.argmax(-1)).float().mean()),
            "compared": f"first-token logits of {cfg.batch} random prompts of {cfg.input_len} tokens, seed {cfg.seed}"}


def max_batch(cfg: LadderConfig) -> int:
    import torch

    from kernelprof.methods.llm.binned import largest_batch
    from kernelprof.methods.llm.config import get_config

    gc.collect()
    torch.cuda.empty_cache()  # the last rung's graphs and activations count as free
    free, _ = torch.cuda.mem_get_info(cfg.device)
    # The optimized model already holds its weights; the estimate counts them again, so add them back.
    from kernelprof.methods.llm.model import weight_bytes
    lcfg = get_config(cfg.model)
    return largest_batch(lcfg, cfg.input_len, cfg.output_len, "optimized", free + weight_bytes(lcfg), MAX_BATCH_CAP)


def measure_rung(spec: RungSpec, cfg: LadderConfig, model_cache: dict[str, Any]) -> RungResult:
    base = RungResult(spec.name, spec.adds, spec.supported, cfg.model, cfg.batch, cfg.input_len, cfg.output_len,
                      extra={"ladder_key": cfg.key()})
    if not spec.supported:
        return replace(base, flags=("not_supported",), notes=(spec.why_not,))
    t0 = time.perf_counter()
    try:
        if spec.name in ("hf-eager", "hf-sdpa-static-compile"):
            model_cache.clear()
            gc.collect()
            reps, ver = _measure_hf(cfg, spec.name != "hf-eager")
            base = replace(base, extra={**base.extra, **ver},
                           notes=("prefill = a separate 1-token generate; decode J = request - prefill",))
        elif spec.name == "kp-eager":
            reps = _measure_kp(cfg, "eager", cfg.batch, model_cache)
        elif spec.name == "kp-cuda-graphs":
            reps = _measure_kp(cfg, "eager-graphs", cfg.batch, model_cache)
        elif spec.name == "kp-fused-pointwise":
            reps = _measure_kp(cfg, "eager-graphs-fused", cfg.batch, model_cache)
        elif spec.name == "kp-triton":
            reps = _measure_kp(cfg, "optimized", cfg.batch, model_cache)
        elif spec.name == "kp-fp8":
            diff = fp8_output_difference(cfg, model_cache)
            reps = _measure_kp(cfg, "optimized", cfg.batch, model_cache, gemm="fp8")
            base = replace(base, extra={**base.extra, "gemm": "fp8", "output_difference": diff},
                           notes=(f"outputs vs bf16 weights (first token's logits, same prompt): relative "
                                  f"error {diff['logits_rel_err']:.2%}, top-1 agreement {diff['top1_agreement']:.0%}",))
        elif spec.name == "kp-triton-max-batch":
            # On top of the rung below: fp8 weights if kp-fp8 was just measured (its model is cached).
            gemm = "fp8" if "optimized-fp8" in model_cache else "cublas"
            b = max_batch(cfg)
            if b <= cfg.batch:
                return replace(base, flags=("no_larger_batch_fits",),
                               notes=(f"largest batch that fits is {b} <= {cfg.batch}",))
            reps = _measure_kp(cfg, "optimized", b, model_cache, gemm=gemm)
            base = replace(base, batch=b, extra={**base.extra, "gemm": gemm})
        else:
            raise UsageError(f"no measurement for rung {spec.name!r}")
    except (NotSupportedError, ImportError) as exc:
        return replace(base, supported=False, flags=("skipped",), notes=(f"skipped: {exc}",))
    except Exception as exc:  # noqa: BLE001 - one rung failing (OOM, a compile error) must not lose the climb
        import torch

        model_cache.clear()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        code = "out_of_memory" if isinstance(exc, torch.cuda.OutOfMemoryError) else "failed"
        first = (str(exc).splitlines() or [""])[0].split(" Stack trace:")[0]  # the message, not the trace
        return replace(base, supported=False, flags=(code,), notes=(f"{type(exc).__name__}: {first}",))
    return replace(base, repeats=tuple(reps), extra={**base.extra, "wall_s": time.perf_counter() - t0,
                                                     "measured": _provenance()})


def _provenance() -> dict[str, Any]:
    """Revision and library versions a rung was measured at (a results file made later from the
    JSONL, on another machine, quotes these rather than its own)."""
    from kernelprof.outputs.benchfile import library_versions
    from kernelprof.outputs.environment import git_revision

    return {"git_revision": git_revision(), "versions": library_versions()}


def run_ladder(cfg: LadderConfig, rungs: tuple[RungSpec, ...], *, out: str | Path, resume: bool = True,
               on_rung: Callable[[RungResult], None] | None = None) -> list[RungResult]:
    """Measure each rung (skipping those finished in `out` under the same settings and GPU when
    `resume`; `resume=False` moves an existing file aside), stream each to `out` as it finishes, and
    return them linked (each compared with the rung below)."""
    from kernelprof.gpu.devices import gpu_facts, require_gpu
    from kernelprof.methods.ladder_store import LadderStore

    require_gpu("kernelprof ladder")
    facts = gpu_facts(cfg.device)
    config = cfg.store_config(facts.name, facts.uuid, facts.driver_version)
    results, cache = [], {}
    with LadderStore(out, config, fresh=not resume) as store:
        for spec in rungs:
            r = store.done.get(spec.name)
            if r is None:
                r = measure_rung(spec, cfg, cache)
                store.append(r)
            results.append(r)
            if on_rung:
                on_rung(r)
    return link(results)
