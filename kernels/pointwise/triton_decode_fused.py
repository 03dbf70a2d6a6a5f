"""Fused Triton kernels for a decode step's small pointwise work, where launches, not bytes, cost.

An H200 kernel record of the 8B-shaped model at batch 8 (2026-12-04, e300645) spent, per decode step of
5.14 ms, 175 us in 64 `index_copy_` cache writes, 94 us in 64 residual adds and 73 us in 64 RoPE
launches, each of 1-3 us moving ~64 KB, plus ~0.7 us of idle gap at each kernel boundary. These two
kernels do that work in a third of the launches:

- rope_qkv_to_cache(qkv [B, 1, (Hq + 2 Hkv) Dh], cos_table, sin_table [L, Dh/2] fp32, pos int64 [1],
  k_cache, v_cache [B, Hkv, L, Dh]) -> q [B, Hq, Dh]: RoPE on q and k at position pos, k and v written
  into the caches at pos, q returned. Replaces two RoPE launches, two `index_copy_` and the
  per-step `index_select` of the tables. One program per (sequence, block of heads), over the
  Hq + 2 Hkv heads of the fused QKV row.
- add_rms_norm(x [..., D], r [..., D], w [D], eps) -> (s, h): s = x + r rounded to x's dtype (the
  residual), h = RMSNorm(s) * w, both [..., D] contiguous. Replaces a residual add and the RMSNorm after it.

Both round where kernels/pointwise/reference.py does, so they equal the unfused chain up to fp32
summation order.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.errors import ShapeError
from kernels.validate import check_tensor, check_triton_device

DTYPES = (torch.bfloat16, torch.float16, torch.float32)


@triton.jit
def _rope_qkv_cache_kernel(QKV, Cos, Sin, Pos, Q, KC, VC, stride_xb, stride_cs,
                           stride_kb, stride_kh, stride_kn, stride_vb, stride_vh, stride_vn,
                           HQ, HKV, HALF: tl.constexpr, BLOCK_H: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]  # head index within the QKV row
    chans = tl.arange(0, 2 * HALF)[None, :]
    valid = rows < HQ + 2 * HKV
    pos = tl.load(Pos)
    x = tl.load(QKV + b * stride_xb + rows * (2 * HALF) + chans, mask=valid, other=0.0)
    # Whole heads loaded contiguously, pairs split in registers (as kernels/pointwise/triton_pointwise.py).
    x0, x1 = tl.split(tl.reshape(x.to(tl.float32), (BLOCK_H, HALF, 2)))
    pair = tl.arange(0, HALF)[None, :]
    c = tl.load(Cos + pos * stride_cs + pair)
    sn = tl.load(Sin + pos * stride_cs + pair)
    y = tl.reshape(tl.join(x0 * c - x1 * sn, x0 * sn + x1 * c), (BLOCK_H, 2 * HALF)).to(x.dtype)
    is_q = rows < HQ
    is_k = (rows >= HQ) & (rows < HQ + HKV)
    is_v = (rows >= HQ + HKV) & valid
    tl.store(Q + b * HQ * (2 * HALF) + rows * (2 * HALF) + chans, y, mask=is_q)
    kh = rows - HQ
    tl.store(KC + b * stride_kb + kh * stride_kh + pos * stride_kn + chans, y, mask=is_k)
    vh = rows - HQ - HKV
    tl.store(VC + b * stride_vb + vh * stride_vh + pos * stride_vn + chans, x, mask=is_v)  # v: not rotated


def rope_qkv_to_cache(qkv: torch.Tensor, cos_table: torch.Tensor, sin_table: torch.Tensor, pos: torch.Tensor,
                      k_cache: torch.Tensor, v_cache: torch.Tensor) -> torch.Tensor:
    """qkv [B, 1, (Hq + 2 Hkv) Dh] (q heads, then k, then v; Dh contiguous within a head), cos_table,
    sin_table fp32 [L, Dh/2], pos int64 [1] on the device (0 <= pos < L, not checked: a device sync),
    k_cache, v_cache [B, Hkv, L, Dh] of qkv's dtype, written at pos. Returns q [B, Hq, Dh] rotated.
    Hq is inferred from the row width and the caches' Hkv."""
    check_tensor("qkv", qkv, dims=["batch", "one token", "(Hq + 2 Hkv) x head_dim"], dtypes=DTYPES)
    B, S, width = qkv.shape
    if S != 1:
        raise ShapeError(f"qkv must hold one token per sequence (decode), got seq_len {S}")
    cache_dims = ["batch", "kv_heads", "max_len", "head_dim"]
    check_tensor("k_cache", k_cache, dims=cache_dims, shape=[B, None, None, None], dtypes=[qkv.dtype],
                 device=qkv.device)
    _, Hkv, L, Dh = k_cache.shape
    check_tensor("v_cache", v_cache, dims=cache_dims, shape=[B, Hkv, L, Dh], dtypes=[qkv.dtype], device=qkv.device)
    if Dh < 2 or Dh & (Dh - 1):
        raise ShapeError(f"head_dim must be a power of two >= 2 (channel pairs, one tile), got {Dh}")
    if width % Dh or width // Dh <= 2 * Hkv:
        raise ShapeError(f"qkv's last dimension {width} must be (q_heads + 2 x {Hkv} kv_heads) x head_dim {Dh}")
    Hq = width // Dh - 2 * Hkv
    for name, t in (("cos_table", cos_table), ("sin_table", sin_table)):
        check_tensor(name, t, dims=["max_len", "head_dim/2"], shape=[None, Dh // 2], dtypes=[torch.float32],
                     device=qkv.device)
    check_tensor("pos", pos, dims=["one"], shape=[1], dtypes=[torch.int64], device=qkv.device)
    for name, t in (("k_cache", k_cache), ("v_cache", v_cache), ("qkv", qkv)):
        if t.stride(-1) != 1:
            raise ShapeError(f"{name} must have a contiguous last dimension, got strides {list(t.stride())}")
    cos_table, sin_table = cos_table.contiguous(), sin_table.contiguous()
    check_triton_device(qkv)
    q = torch.empty((B, Hq, Dh), dtype=qkv.dtype, device=qkv.device)
    block_h = max(1, min(triton.next_power_of_2(Hq + 2 * Hkv), 1024 // Dh))
    if B:
        _rope_qkv_cache_kernel[(B, triton.cdiv(Hq + 2 * Hkv, block_h))](
            qkv, cos_table, sin_table, pos, q, k_cache, v_cache, qkv.stride(0), cos_table.stride(0),
            k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
            v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
            Hq, Hkv, HALF=Dh // 2, BLOCK_H=block_h, num_warps=4)
    return q


@triton.jit
def _add_rms_norm_kernel(X, R, W, S, H, stride_x, stride_r, D, eps, BLOCK_D: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    mask = cols < D
    s = (tl.load(X + row * stride_x + cols, mask=mask, other=0.0)
         + tl.load(R + row * stride_r + cols, mask=mask, other=0.0))  # rounded to the dtype, as x + r
    tl.store(S + row * D + cols, s, mask=mask)
    sf = s.to(tl.float32)
    inv = 1.0 / tl.sqrt(tl.sum(sf * sf, axis=0) / D + eps)
    w = tl.load(W + cols, mask=mask, other=0.0)
    tl.store(H + row * D + cols, (sf * inv).to(W.dtype.element_ty) * w, mask=mask)


def add_rms_norm(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x, r [..., D] of one dtype, w [D] -> (s = x + r, RMSNorm(s) * w), both [..., D] contiguous."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ShapeError("x must be a tensor [..., D]")
    D = x.shape[-1]
    check_tensor("x", x.reshape(-1, D), dims=["rows", "D"], dtypes=DTYPES)
    if not isinstance(r, torch.Tensor) or r.shape != x.shape:
        raise ShapeError(f"r must have x's shape {list(x.shape)}, got "
                         f"{list(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__}")
    check_tensor("r", r.reshape(-1, D), dims=["rows", "D"], dtypes=[x.dtype], device=x.device)
    check_tensor("w", w, dims=["D"], shape=[D], dtypes=[x.dtype], device=x.device)
    check_triton_device(x)
    x2, r2 = x.reshape(-1, D), r.reshape(-1, D)
    x2 = x2 if x2.stride(-1) == 1 else x2.contiguous()
    r2 = r2 if r2.stride(-1) == 1 else r2.contiguous()
    s = torch.empty((x2.shape[0], D), dtype=x.dtype, device=x.device)
    h = torch.empty_like(s)
    if x2.shape[0]:
        _add_rms_norm_kernel[(x2.shape[0],)](x2, r2, w, s, h, x2.stride(0), r2.stride(0), D, eps,
                                             BLOCK_D=triton.next_power_of_2(D), num_warps=4 if D <= 2048 else 8)
    return s.reshape(x.shape), h.reshape(x.shape)
