"""Row-wise scaled fp8 (e4m3) linear layers for the LLM: weights quantized once per output column,
activations per row at each call, the product by torch._scaled_mm (cuBLASLt on Hopper), bf16 out.

    qw = quantize_weight(w_kn)          # w_kn [K, N] bf16 -> Fp8Weight (w_nk [N, K] e4m3, scale_n [1, N])
    y = fp8_linear(x_mk, qw)            # x_mk [M, K] bf16 -> y [M, N] bf16

A row's scale is amax(|row|) / 448 (e4m3's largest finite value), so no element saturates and each row
keeps e4m3's 3 mantissa bits of relative precision (rounding error <= 2^-4 of the value). The
activations are quantized by one Triton kernel per call (`_quantize_rows_kernel`: the row's amax and
its cast in one launch; a chain of PyTorch ops would be 5-7 launches per GEMM, ~1,000 per 8B decode
step). The reference (`kernels/gemm/reference.py`: `quantize_rows_reference`, `fp8_linear_reference`,
PyTorch ops, any device) is what the kernel must match bit for bit. The Triton interpreter's fp8 cast
does not round as torch's does (up to 64 off at 448 on 2026-12-07), so the kernel is checked on the
GPU only; the CPU model runs the reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

FP8_DTYPE = getattr(torch, "float8_e4m3fn", None)
FP8_MAX = 448.0          # largest finite e4m3fn value
MIN_SCALE = 1e-12        # an all-zero row: any scale gives zeros; keep it finite
M_ALIGN = 16             # cuBLASLt fp8: rows padded to a multiple of 16


@dataclass(frozen=True)
class Fp8Weight:
    """A [K, N] weight as cuBLASLt's fp8 second operand: w_nk [N, K] e4m3 (w_nk.t() is K-major) and
    one float32 scale per output column, scale_n [1, N]: w_kn ~= w_nk.t() * scale_n."""

    w_nk: torch.Tensor
    scale_n: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        """(K, N), as the bf16 weight it replaces."""
        return (self.w_nk.shape[1], self.w_nk.shape[0])

    def dequantized(self) -> torch.Tensor:
        """[K, N] float32: what the fp8 GEMM multiplies by (for error checks)."""
        return (self.w_nk.float() * self.scale_n.t()).t()


def _require_fp8() -> None:
    if FP8_DTYPE is None:
        raise RuntimeError("this torch has no float8_e4m3fn dtype (needs torch >= 2.1)")


def quantize_weight(w_kn: torch.Tensor) -> Fp8Weight:
    """w_kn [K, N] (bf16/fp16/fp32) -> Fp8Weight with per-output-column scales."""
    _require_fp8()
    if w_kn.dim() != 2:
        raise ValueError(f"w_kn must be [K, N], got shape {list(w_kn.shape)}")
    w = w_kn.float()
    scale = (w.abs().amax(dim=0, keepdim=True) / FP8_MAX).clamp_min(MIN_SCALE)   # [1, N]
    w_nk = (w / scale).t().contiguous().to(FP8_DTYPE)                             # [N, K]
    return Fp8Weight(w_nk, scale.contiguous())


@triton.jit
def _quantize_rows_kernel(x_ptr, y_ptr, s_ptr, K, stride_x, stride_y, BLOCK_K: tl.constexpr):
    """One program per row: amax over the row, then the row divided by its scale and cast to fp8."""
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK_K)
    run_max = tl.zeros([BLOCK_K], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        x = tl.load(x_ptr + row * stride_x + k0 + offs, mask=k0 + offs < K, other=0.0).to(tl.float32)
        run_max = tl.maximum(run_max, tl.abs(x))
    amax = tl.max(run_max, axis=0)
    scale = tl.maximum(tl.math.div_rn(amax, tl.full((), 448.0, tl.float32)), 1e-12)  # not x * (1/448): torch divides
    tl.store(s_ptr + row, scale)
    for k0 in range(0, K, BLOCK_K):
        x = tl.load(x_ptr + row * stride_x + k0 + offs, mask=k0 + offs < K, other=0.0).to(tl.float32)
        # div_rn: IEEE round-to-nearest, as torch divides (a plain "/" may lower to an approximate divide)
        tl.store(y_ptr + row * stride_y + k0 + offs, tl.math.div_rn(x, scale).to(y_ptr.dtype.element_ty),
                 mask=k0 + offs < K)


def quantize_rows(x_mk: torch.Tensor, rows_out: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x_mk [M, K] on CUDA -> (x8 [rows_out, K] e4m3, scale_m [rows_out, 1] float32), x_mk ~= x8[:M] *
    scale_m[:M], by one Triton launch. `rows_out` >= M (default M): the extra rows are zero with scale
    1, so the GEMM needs no separate padding copy."""
    _require_fp8()
    m, k = x_mk.shape
    rows = m if rows_out is None else rows_out
    if rows < m:
        raise ValueError(f"rows_out {rows} < M {m}")
    if x_mk.device.type != "cuda":
        raise ValueError("quantize_rows runs on CUDA; on other devices use reference.quantize_rows_reference")
    x = x_mk if x_mk.stride(1) == 1 else x_mk.contiguous()
    y = (torch.zeros if rows > m else torch.empty)(rows, k, dtype=FP8_DTYPE, device=x.device)
    s = torch.ones(rows, 1, dtype=torch.float32, device=x.device)
    _quantize_rows_kernel[(m,)](x, y, s, k, x.stride(0), y.stride(0), BLOCK_K=1024, num_warps=4)
    return y, s


def fp8_linear(x_mk: torch.Tensor, w: Fp8Weight, out_dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """x_mk [M, K] -> [M, N] in out_dtype: rows quantized, times the fp8 weight, both scales applied in
    the GEMM's epilogue (torch._scaled_mm, row-wise scales)."""
    m, k = x_mk.shape
    if k != w.shape[0]:
        raise ValueError(f"x has K={k}, the weight K={w.shape[0]}")
    rows = -(-m // M_ALIGN) * M_ALIGN
    x8, s = quantize_rows(x_mk, rows)
    y = torch._scaled_mm(x8, w.w_nk.t(), scale_a=s, scale_b=w.scale_n, out_dtype=out_dtype)
    return y[:m] if rows != m else y
