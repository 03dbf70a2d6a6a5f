"""GEMM references: torch.matmul (cuBLAS on the GPU) and, for fp8, torch._scaled_mm (cuBLASLt).

These are the correctness oracles and the vendor baselines; the Triton kernels never import them.
"""
from __future__ import annotations

import torch

from kernels.errors import NotSupportedError

FP8_DTYPE = getattr(torch, "float8_e4m3fn", None)


def gemm_reference(a: torch.Tensor, b: torch.Tensor, scale_a: torch.Tensor | None = None,
                   scale_b: torch.Tensor | None = None) -> torch.Tensor:
    """Readable oracle: C = (scale_a * A) @ (scale_b * B) computed in float64 on the inputs' device
    (float64 matmul runs on CPU and CUDA). a: [M, K], b: [K, N]. Returns float64 [M, N]."""
    c = a.to(torch.float64) @ b.to(torch.float64)
    if scale_a is not None:
        c = c * (scale_a.to(torch.float64) * scale_b.to(torch.float64))
    return c


def gemm_cublas(a: torch.Tensor, b: torch.Tensor, scale_a: torch.Tensor | None = None,
                scale_b: torch.Tensor | None = None) -> torch.Tensor:
    """The vendor baseline. a: [M, K], b: [K, N]. bf16/fp16/fp32: torch.matmul. fp8 e4m3 with
    per-tensor float32 scales: torch._scaled_mm with bf16 output (needs b with K contiguous, i.e.
    b = b_nk.T, and M, N, K multiples of 16). Returns C [M, N]."""
    if FP8_DTYPE is not None and a.dtype == FP8_DTYPE:
        if a.device.type != "cuda":
            raise NotSupportedError("fp8 cuBLAS GEMM (torch._scaled_mm) needs a CUDA GPU")
        if torch.cuda.get_device_capability(a.device) < (8, 9):
            raise NotSupportedError("fp8 cuBLAS GEMM needs compute capability >= 8.9")
        try:
            return torch._scaled_mm(a, b, scale_a=scale_a, scale_b=scale_b, out_dtype=torch.bfloat16)
        except RuntimeError as exc:  # layout/alignment limits of cuBLASLt fp8
            raise NotSupportedError(f"torch._scaled_mm cannot run this case: {exc}") from exc
    c = torch.matmul(a, b)
    if scale_a is not None:
        c = c * (scale_a * scale_b).to(c.dtype)
    return c
