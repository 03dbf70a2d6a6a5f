"""Fused Triton kernels for the Llama block's pointwise work: RMSNorm, RoPE and SwiGLU.

In PyTorch each of these is a chain of elementwise kernels (RMSNorm: cast, square, mean, rsqrt,
two multiplies, cast back; RoPE: about ten), each reading and writing the whole activation. An H100
kernel trace of the 8B-shaped model showed them taking about a third of the prefill's GPU time and
~1,600 kernels per decode step. Each function here is one kernel that reads its input once and
writes its output once, computing in fp32 and rounding where the references in `reference.py` do.

Layouts:
- rms_norm(x [..., D], w [D], eps) -> [..., D]: rows of D contiguous elements (any row stride).
- apply_rope(x [B, S, H, Dh], cos [S, Dh/2], sin [S, Dh/2]) -> [B, S, H, Dh] contiguous: each pair
  (2i, 2i+1) of a head's channels rotated by the position's angle i. x may be a strided view (the
  q/k slices of a fused QKV projection): heads contiguous within a token, Dh contiguous.
- swiglu(gate_up [..., 2F]) -> [..., F]: silu(gate) * up with gate = [..., :F], up = [..., F:].
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.errors import ShapeError
from kernels.validate import check_tensor, check_triton_device

DTYPES = (torch.bfloat16, torch.float16, torch.float32)


@triton.jit
def _rms_norm_kernel(X, W, Out, stride_x, stride_o, D, eps, BLOCK_D: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # rows x stride passes 2^31 in a workload's prefill
    cols = tl.arange(0, BLOCK_D)
    mask = cols < D
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    inv = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / D + eps)
    w = tl.load(W + cols, mask=mask, other=0.0)
    # Same rounding as the reference: normalize in fp32, cast to the input dtype, then scale by w.
    y = (x * inv).to(W.dtype.element_ty) * w
    tl.store(Out + row * stride_o + cols, y, mask=mask)


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """x [..., D], w [D] of x's dtype -> RMSNorm(x) * w, [..., D] contiguous."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ShapeError(f"x must be a tensor [..., D], got {type(x).__name__ if not isinstance(x, torch.Tensor) else 'a scalar'}")
    D = x.shape[-1]
    check_tensor("x", x.reshape(-1, D), dims=["rows", "D"], dtypes=DTYPES)
    check_tensor("w", w, dims=["D"], shape=[D], dtypes=[x.dtype], device=x.device)
    check_triton_device(x)
    x2 = x.reshape(-1, D)  # a view when rows are evenly strided; otherwise a copy
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    out = torch.empty((x2.shape[0], D), dtype=x.dtype, device=x.device)
    if x2.shape[0]:
        _rms_norm_kernel[(x2.shape[0],)](x2, w, out, x2.stride(0), out.stride(0), D, eps,
                                         BLOCK_D=triton.next_power_of_2(D), num_warps=4 if D <= 2048 else 8)
    return out.reshape(x.shape)


@triton.jit
def _rope_kernel(X, Cos, Sin, Out, S, H, stride_xb, stride_xs, stride_cs, HALF: tl.constexpr,
                 BLOCK_H: tl.constexpr):
    tok = tl.program_id(0).to(tl.int64)  # b * S + s; 64-bit offsets, as in the other kernels here
    b = tok // S
    s = tok % S
    heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    chans = tl.arange(0, 2 * HALF)[None, :]
    mask = heads < H
    # Whole heads, contiguous, and the pairs split in registers: loading channels 2i and 2i+1 as two
    # stride-2 gathers made scalar 2-byte accesses, and the kernel ran at ~0.3 TB/s on an H100.
    x = tl.load(X + b * stride_xb + s * stride_xs + heads * (2 * HALF) + chans, mask=mask, other=0.0)
    x0, x1 = tl.split(tl.reshape(x.to(tl.float32), (BLOCK_H, HALF, 2)))
    pair = tl.arange(0, HALF)[None, :]
    c = tl.load(Cos + s * stride_cs + pair)
    sn = tl.load(Sin + s * stride_cs + pair)
    y = tl.reshape(tl.join(x0 * c - x1 * sn, x0 * sn + x1 * c), (BLOCK_H, 2 * HALF))
    tl.store(Out + tok * H * (2 * HALF) + heads * (2 * HALF) + chans, y.to(Out.dtype.element_ty), mask=mask)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, S, H, Dh] rotated by cos, sin [S, Dh/2] (fp32) -> a new contiguous [B, S, H, Dh]."""
    check_tensor("x", x, dims=["batch", "seq_len", "heads", "head_dim"], dtypes=DTYPES)
    B, S, H, Dh = x.shape
    if Dh < 2 or Dh & (Dh - 1):
        raise ShapeError(f"x's head_dim must be a power of two >= 2 (channel pairs, one tile), got {Dh}")
    for name, t in (("cos", cos), ("sin", sin)):
        check_tensor(name, t, dims=["seq_len", "head_dim/2"], shape=[S, Dh // 2], dtypes=[torch.float32],
                     device=x.device)
    if x.stride(3) != 1 or x.stride(2) != Dh:
        x = x.contiguous()  # the kernel needs heads packed within a token
    cos, sin = cos.contiguous(), sin.contiguous()
    check_triton_device(x)
    out = torch.empty((B, S, H, Dh), dtype=x.dtype, device=x.device)
    # ~1024 elements per program: a decode step's few tokens still spread over several programs.
    block_h = max(1, min(triton.next_power_of_2(H), 1024 // Dh))
    if B * S:
        _rope_kernel[(B * S, triton.cdiv(H, block_h))](x, cos, sin, out, S, H, x.stride(0), x.stride(1),
                                                       cos.stride(0), HALF=Dh // 2, BLOCK_H=block_h, num_warps=4)
    return out


@triton.jit
def _swiglu_kernel(GU, Out, F, stride_g, BLOCK: tl.constexpr):
    # 64-bit row offsets: a 44 x 4096-token prefill's [180k, 28672] input passes 2^31 elements, and
    # 32-bit offsets wrapped into other memory on an H100 (an illegal-address fault in a workload run).
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < F
    g = tl.load(GU + row * stride_g + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(GU + row * stride_g + F + cols, mask=mask, other=0.0)
    # The reference rounds silu(gate) to the input dtype before the product; so does this.
    act = (g / (1.0 + tl.exp(-g))).to(u.dtype)
    tl.store(Out + row * F + cols, act * u, mask=mask)


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """gate_up [..., 2F] -> silu(gate_up[..., :F]) * gate_up[..., F:], [..., F] contiguous."""
    if not isinstance(gate_up, torch.Tensor) or gate_up.dim() < 1 or gate_up.shape[-1] % 2:
        got = list(gate_up.shape) if isinstance(gate_up, torch.Tensor) else type(gate_up).__name__
        raise ShapeError(f"gate_up must be a tensor [..., 2F] (gate then up, an even last dimension), got {got}")
    check_tensor("gate_up", gate_up.reshape(-1, gate_up.shape[-1]), dims=["rows", "2F"], dtypes=DTYPES)
    check_triton_device(gate_up)
    F = gate_up.shape[-1] // 2
    gu = gate_up.reshape(-1, 2 * F)
    if gu.stride(-1) != 1:
        gu = gu.contiguous()
    out = torch.empty((gu.shape[0], F), dtype=gate_up.dtype, device=gate_up.device)
    BLOCK = 1024
    if gu.shape[0]:
        _swiglu_kernel[(gu.shape[0], triton.cdiv(F, BLOCK))](gu, out, F, gu.stride(0), BLOCK=BLOCK, num_warps=4)
    return out.reshape(*gate_up.shape[:-1], F)
