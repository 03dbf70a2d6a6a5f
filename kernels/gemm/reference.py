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


def quantize_rows_reference(x_mk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x_mk [M, K] -> (x8 [M, K] e4m3, scale_m [M, 1] float32), x_mk ~= x8 * scale_m: the oracle of
    kernels/gemm/fp8_rowwise.quantize_rows (scale = amax(|row|) / 448, at least 1e-12)."""
    from kernels.gemm.fp8_rowwise import FP8_MAX, MIN_SCALE

    if FP8_DTYPE is None:
        raise NotSupportedError("this torch has no float8_e4m3fn dtype")
    x = x_mk.float()
    scale = (x.abs().amax(dim=1, keepdim=True) / FP8_MAX).clamp_min(MIN_SCALE)
    return (x / scale).to(FP8_DTYPE), scale


def fp8_linear_reference(x_mk: torch.Tensor, w, out_dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """fp8_rowwise.fp8_linear by PyTorch ops on any device: x_mk [M, K], w an Fp8Weight -> [M, N]."""
    x8, s = quantize_rows_reference(x_mk)
    return torch._scaled_mm(x8, w.w_nk.t(), scale_a=s, scale_b=w.scale_n, out_dtype=out_dtype)
