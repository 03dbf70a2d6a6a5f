"""The peer baseline: Hugging Face transformers' LlamaForCausalLM, eager attention, `generate`.

Same shape (config), random bf16 weights made on the GPU, fixed output lengths (min_new_tokens =
max_new_tokens, so no EOS), greedy. Measured in-run with the Profiler: a "prefill" phase (generate
with one new token) and a "request" phase (the full generate), so the request's energy and time
compare directly with kernelprof's own model on the same card in the same run, as the paper
compared its optimized stack with "native PyTorch".
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from kernelprof.errors import NotSupportedError
from kernelprof.methods.llm.config import LlamaConfig, get_config


@dataclass(frozen=True)
class HFResult:
    model: str
    batch: int
    input_len: int
    output_len: int
    requests: int
    prefill_time_s: float
    prefill_energy_j: float | None
    request_time_s: float      # one full generate call (a batch of `batch` requests)
    request_energy_j: float | None
    j_per_request: float | None
    transformers_version: str
    attn_implementation: str
    flags: tuple[str, ...]
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "flags": list(self.flags)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HFResult:
        return cls(**{**d, "flags": tuple(d["flags"])})


def hf_model(cfg: LlamaConfig, device: str = "cuda", seed: int = 0, dtype: Any = None,
             attn_implementation: str = "eager") -> Any:
    """A randomly initialized LlamaForCausalLM with this shape, eager (or `attn_implementation`)
    attention, bf16 (or `dtype`), made directly on `device`."""
    try:
        import transformers
        from transformers import LlamaConfig as HFLlamaConfig
        from transformers import LlamaForCausalLM
    except ImportError as exc:
        if "kernels" in str(exc):  # transformers >= 5.25 imports the Hub's `kernels`; ours shadows it
            raise NotSupportedError(
                f"transformers could not import the Hugging Face `kernels` package ({exc}): kernelprof's "
                "top-level `kernels/` shadows it. Use transformers<5.25 (`pip install 'transformers<5.25'`)"
            ) from exc
        raise NotSupportedError("the transformers baseline needs `pip install transformers`") from exc
    import torch

    hf_cfg = HFLlamaConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.dim, intermediate_size=cfg.ffn_dim,
                           num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                           num_key_value_heads=cfg.n_kv_heads, rope_theta=cfg.rope_theta, rms_norm_eps=cfg.norm_eps,
                           max_position_embeddings=131072, tie_word_embeddings=False)
    hf_cfg._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or torch.bfloat16)  # initialize in bf16 on the GPU: no fp32 copy, no CPU init
    try:
        with torch.device(device):
            model = LlamaForCausalLM(hf_cfg)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    model.generation_config.pad_token_id = 0
    model._kernelprof_transformers = transformers.__version__
    return model


def _generate_compiles_itself() -> bool:
    """transformers >= 4.48 compiles the forward inside `generate` when the cache is static
    (`GenerationConfig.compile_config`), marking CUDA-graph steps itself. Wrapping `model.forward` in
    torch.compile as well failed there: on the H200 (transformers 5.17, torch 2.11, 2026-12-03) the
    second call read "accessing tensor output of CUDAGraphs that has been overwritten"."""
    try:
        from transformers import CompileConfig  # noqa: F401
    except ImportError:
        return False
    return True


def hf_model_for(cfg: LlamaConfig, device: int, seed: int, compiled: bool) -> Any:
    """The eager baseline, or SDPA with a compiled forward (reduce-overhead: CUDA graphs per shape):
    compiled by `generate` itself where transformers does that, else by wrapping the forward."""
    import torch

    model = hf_model(cfg, device=f"cuda:{device}", seed=seed, attn_implementation="sdpa" if compiled else "eager")
    if compiled and not _generate_compiles_itself():
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
    return model


def _generate_kwargs(compiled: bool) -> dict[str, Any]:
    if not compiled:
        return {}
    if _generate_compiles_itself():
        from transformers import CompileConfig

        return {"cache_implementation": "static",
                "compile_config": CompileConfig(fullgraph=True, mode="reduce-overhead")}
    return {"cache_implementation": "static"}


def run_hf(model_name: str, batch: int, input_len: int, output_len: int, *, device: int = 0, seed: int = 0,
           min_inrun_s: float = 2.0, max_requests: int = 10, compiled: bool = False,
           model: Any = None) -> HFResult:
    """`compiled`: SDPA attention, a static KV cache and torch.compile(mode="reduce-overhead") of the
    forward (transformers' documented recipe), the paper's torch.compile rung; else eager attention
    with the dynamic cache. `model`: one returned by `hf_model_for` to reuse (repeats then skip the
    weights' initialization and, compiled, the recompilation)."""
    import torch

    from kernelprof.gpu.devices import require_gpu
    from kernelprof.methods.llm.generate import GenerateShape, check_fits, random_prompt
    from kernelprof.profiler import Profiler

    require_gpu("the transformers baseline")
    wall0 = time.perf_counter()
    cfg = get_config(model_name)
    shape = GenerateShape(batch, input_len, output_len)
    if model is None:  # a passed model already holds its weights: the estimate would count them twice
        check_fits(cfg, shape, "eager", device)
    with torch.cuda.device(device):
        attn = "sdpa" if compiled else "eager"
        if model is None:
            model = hf_model_for(cfg, device, seed, compiled)
        extra = _generate_kwargs(compiled)
        prompt = random_prompt(cfg, shape, device=f"cuda:{device}", seed=seed)
        mask = torch.ones_like(prompt)

        def gen(n: int):
            with torch.no_grad():
                return model.generate(prompt, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                      do_sample=False, **extra)

        if compiled:  # compile both shapes (the 1-token prefill call, the whole request) before timing
            gen(1)
            gen(output_len)
        t0 = time.perf_counter()
        out = gen(output_len)  # warm-up, and the fixed-length check below
        torch.cuda.synchronize()
        one = time.perf_counter() - t0
        if out.shape[1] != input_len + output_len:
            raise RuntimeError(f"generate returned {out.shape[1] - input_len} new tokens, not {output_len}")
        requests = int(max(1, min(max_requests, round(min_inrun_s / max(one, 1e-3)))))
        with Profiler(gpus=[device]) as prof:
            for _ in range(requests):
                with prof.phase("prefill"):
                    gen(1)
                with prof.phase("request"):
                    gen(output_len)
        res = prof.result()
    pre = [p for p in res.phases if p.path == "prefill"]
    req = [p for p in res.phases if p.path == "request"]

    def total(ps, attr):
        vals = [getattr(p, attr) for p in ps]
        return None if any(v is None for v in vals) else float(sum(vals))

    req_e = total(req, "energy_j")
    return HFResult(model=model_name, batch=batch, input_len=input_len, output_len=output_len, requests=requests,
                    prefill_time_s=total(pre, "time_s") / requests,
                    prefill_energy_j=None if total(pre, "energy_j") is None else total(pre, "energy_j") / requests,
                    request_time_s=total(req, "time_s") / requests,
                    request_energy_j=None if req_e is None else req_e / requests,
                    j_per_request=None if req_e is None else req_e / requests / batch,
                    transformers_version=getattr(model, "_kernelprof_transformers", "?"),
                    attn_implementation=attn + ("+static+compile" if compiled else ""),
                    flags=tuple(sorted({f.code for p in (*pre, *req) for f in p.flags})),
                    wall_s=time.perf_counter() - wall0)
