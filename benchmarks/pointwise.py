"""The fused pointwise kernels (RMSNorm, RoPE, SwiGLU) at Llama-3.1-8B sizes, against what bounds them.

For each kernel and token count (a batch-8 prefill of 512 tokens, and decode steps of batch 8 and
64): the fused Triton kernel, the PyTorch reference chain, and a copy of the same input with the
same access pattern (`torch` reading the same, possibly strided, view and writing a contiguous
result: the bandwidth such a kernel could reach). RoPE also runs the stride-2 kernel it replaced
(kept here only to measure the change in the same run). Everything in one run, on one card.

    PYTHONPATH=. python benchmarks/pointwise.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from kernelprof.outputs.benchfile import Case, write_results  # noqa: E402
from kernelprof.gpu.devices import require_gpu  # noqa: E402
from kernelprof.timeline.cuda_timing import time_cuda  # noqa: E402
from kernels.pointwise import reference as ref  # noqa: E402
from kernels.pointwise import triton_pointwise as fused  # noqa: E402

DIM, HEADS, KV_HEADS, HEAD_DIM, FFN = 4096, 32, 8, 128, 14336  # Llama-3.1-8B


@triton.jit
def _rope_stride2_kernel(X, Cos, Sin, Out, S, H, stride_xb, stride_xs, stride_cs, HALF: tl.constexpr,
                         BLOCK_H: tl.constexpr):
    # The RoPE kernel before 2026-11-26 (one program per token; each pair loaded as two stride-2 gathers).
    tok = tl.program_id(0).to(tl.int64)
    b = tok // S
    s = tok % S
    heads = tl.arange(0, BLOCK_H)[:, None]
    pair = tl.arange(0, HALF)[None, :]
    mask = heads < H
    base = X + b * stride_xb + s * stride_xs + heads * (2 * HALF) + 2 * pair
    x0 = tl.load(base, mask=mask, other=0.0).to(tl.float32)
    x1 = tl.load(base + 1, mask=mask, other=0.0).to(tl.float32)
    c = tl.load(Cos + s * stride_cs + pair)
    sn = tl.load(Sin + s * stride_cs + pair)
    out = Out + tok * H * (2 * HALF) + heads * (2 * HALF) + 2 * pair
    tl.store(out, (x0 * c - x1 * sn).to(Out.dtype.element_ty), mask=mask)
    tl.store(out + 1, (x0 * sn + x1 * c).to(Out.dtype.element_ty), mask=mask)


def rope_stride2(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    B, S, H, Dh = x.shape
    out = torch.empty((B, S, H, Dh), dtype=x.dtype, device=x.device)
    _rope_stride2_kernel[(B * S,)](x, cos, sin, out, S, H, x.stride(0), x.stride(1), cos.stride(0), HALF=Dh // 2,
                                   BLOCK_H=triton.next_power_of_2(H), num_warps=4)
    return out


def timed_s(fn, *args, tokens: int) -> float:
    # Prefill-sized inputs from DRAM (L2 flushed); a decode step's few tokens replayed in a CUDA graph
    # of 50 calls, as the model's decode graph runs them (launch gaps gone, L2 warm).
    if tokens >= 512:
        t = time_cuda(fn, *args, cache="flush", budget_ms=200)
    else:
        t = time_cuda(fn, *args, cache="none", graph_calls=50, budget_ms=200)
    return t.median_ms / 1e3


def main() -> int:
    require_gpu("benchmarks/pointwise.py")
    torch.manual_seed(0)
    dev, dt = "cuda", torch.bfloat16
    cases: list[Case] = []
    for label, B, S in (("prefill-b8", 8, 512), ("decode-b8", 8, 1), ("decode-b64", 64, 1)):
        T = B * S
        qkv = torch.randn(B, S, (HEADS + 2 * KV_HEADS) * HEAD_DIM, device=dev, dtype=dt)
        q = qkv[..., :HEADS * HEAD_DIM].view(B, S, HEADS, HEAD_DIM)  # the model's strided q view
        ang = torch.rand(S, HEAD_DIM // 2, device=dev) * 6.28
        cos, sin = ang.cos(), ang.sin()
        x = torch.randn(T, DIM, device=dev, dtype=dt)
        w = torch.randn(DIM, device=dev, dtype=dt)
        gu = torch.randn(T, 2 * FFN, device=dev, dtype=dt)
        ops = {
            # name: (fused, reference, same-pattern copy, bytes read + written)
            "rope_q": (lambda: fused.apply_rope(q, cos, sin), lambda: ref.apply_rope(q, cos, sin),
                       lambda: q.contiguous(), 2 * q.numel() * 2),
            "rms_norm": (lambda: fused.rms_norm(x, w, 1e-5), lambda: ref.rms_norm(x, w, 1e-5),
                         lambda: x.clone(), 2 * x.numel() * 2),
            "swiglu": (lambda: fused.swiglu(gu), lambda: ref.swiglu(gu),
                       lambda: gu[:, :FFN].contiguous(), (gu.numel() + gu.numel() // 2) * 2),
        }
        a, b = fused.apply_rope(q, cos, sin).float(), rope_stride2(q, cos, sin).float()
        assert ((a - b).norm() / b.norm()).item() < 4e-3  # the same math; bf16 rounds within an ulp (2^-8)
        for name, (f, r, copy, nbytes) in ops.items():
            tf, tr, tc = (timed_s(fn, tokens=T) for fn in (f, r, copy))
            extra = {"tokens": T, "bytes": nbytes, "fused_tb_s": nbytes / tf / 1e12, "copy_s": tc,
                     "copy_tb_s": (nbytes if name != "swiglu" else gu.numel() // 2 * 2 * 2) / tc / 1e12}
            cases.append(Case(f"{name}/{label}/vs_reference", "s", tf, baseline="pytorch-reference",
                              baseline_value=tr, extra=extra))
            cases.append(Case(f"{name}/{label}/tb_s_vs_copy", "TB/s", extra["fused_tb_s"],
                              baseline="torch-copy-same-view", baseline_value=extra["copy_tb_s"], extra=extra))
            msg = f"{name:9s} {label:11s} fused {tf * 1e6:8.1f} us ({extra['fused_tb_s']:.2f} TB/s), " \
                  f"reference {tr * 1e6:8.1f} us, copy {tc * 1e6:8.1f} us"
            if name == "rope_q":
                told = timed_s(lambda: rope_stride2(q, cos, sin), tokens=T)
                cases.append(Case(f"{name}/{label}/vs_stride2_kernel", "s", tf, baseline="rope-stride2-before",
                                  baseline_value=told, extra=extra))
                msg += f", stride-2 kernel before {told * 1e6:8.1f} us"
            print(msg, flush=True)
    path = write_results("pointwise", cases, notes={
        "ratio": "time: baseline / fused (above 1: the fused kernel is faster); TB/s: fused / copy",
        "copy": "torch copying the same input view to a contiguous tensor: the same bytes, no math (for "
                "swiglu the copy moves only the gate half, so its TB/s counts that)",
        "timing": "prefill sizes with L2 flushed before each call; decode sizes in a CUDA graph of 50 calls"})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
