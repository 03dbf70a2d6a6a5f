"""The tiled GEMM launched with one explicit config (kernels/gemm/dispatch.py), with optional
split-K: C = A @ B with A [M, K], B [K, N].

split_k = 1: one program per output tile walks all of K and writes C (as `gemm`'s autotuned path,
without the autotuner). split_k > 1: program (tile, s) walks the s-th chunk of K and writes its fp32
partial tile into a workspace [split_k, M, N]; a second kernel adds the split_k partials of each
element in a fixed order (s = 0, 1, ...), applies the fp8-style scales if any, rounds to C's dtype.
No atomics, so the result is the same on every run. For skinny M (decode GEMMs) the split gives the
SMs enough programs to stream B at HBM speed when N / BLOCK_N tiles alone would leave SMs idle.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.gemm.dispatch import GemmConfig, k_per_split
from kernels.gemm.triton_gemm import _tile_coords


@triton.jit
def _gemm_splitk_kernel(a_ptr, b_ptr, c_ptr, ws_ptr, scale_a_ptr, scale_b_ptr,
                        M, N, K, K_PER_SPLIT,
                        stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                        stride_ws, stride_wm,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                        GROUP_SIZE_M: tl.constexpr, EVEN_K: tl.constexpr, SPLIT: tl.constexpr,
                        HAS_SCALES: tl.constexpr):
    pid = tl.program_id(0)
    split = tl.program_id(1)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    pid_m, pid_n = _tile_coords(pid, num_pid_m, num_pid_n, GROUP_SIZE_M)

    # As in the tiled kernel: rows/columns past the edge are clamped to 0 so the loads stay
    # unmasked; only the K tail is masked (EVEN_K: K and K_PER_SPLIT are whole BLOCK_K steps).
    offs_am = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_bn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_am = tl.where(offs_am < M, offs_am, 0)
    offs_bn = tl.where(offs_bn < N, offs_bn, 0)
    offs_am = tl.max_contiguous(tl.multiple_of(offs_am, BLOCK_M), BLOCK_M)
    offs_bn = tl.max_contiguous(tl.multiple_of(offs_bn, BLOCK_N), BLOCK_N)
    k_start = split * K_PER_SPLIT
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_am[:, None] * stride_am + (k_start + offs_k)[None, :].to(tl.int64) * stride_ak
    b_ptrs = b_ptr + (k_start + offs_k)[:, None].to(tl.int64) * stride_bk + offs_bn[None, :] * stride_bn
    k_end = tl.minimum(k_start + K_PER_SPLIT, K)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(0, tl.cdiv(k_end - k_start, BLOCK_K)):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_left = k_end - k_start - kt * BLOCK_K
            a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
            b = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    offs_cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
    if SPLIT:
        w_ptrs = ws_ptr + split.to(tl.int64) * stride_ws + offs_cm[:, None] * stride_wm + offs_cn[None, :]
        tl.store(w_ptrs, acc, mask=mask)
    else:
        if HAS_SCALES:
            acc = acc * (tl.load(scale_a_ptr) * tl.load(scale_b_ptr))
        c_ptrs = c_ptr + offs_cm[:, None] * stride_cm + offs_cn[None, :] * stride_cn
        tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _splitk_reduce_kernel(ws_ptr, c_ptr, scale_a_ptr, scale_b_ptr, N, SPLITS,
                          stride_ws, stride_wm, stride_cm, stride_cn,
                          BLOCK: tl.constexpr, HAS_SCALES: tl.constexpr):
    """C[m, n-block] = sum over s in order of ws[s, m, n-block] (fp32), scaled, rounded."""
    m = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    valid = offs < N
    base = ws_ptr + m.to(tl.int64) * stride_wm + offs
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for s in range(0, SPLITS):
        acc += tl.load(base + s * stride_ws, mask=valid, other=0.0)
    if HAS_SCALES:
        acc = acc * (tl.load(scale_a_ptr) * tl.load(scale_b_ptr))
    tl.store(c_ptr + m.to(tl.int64) * stride_cm + offs * stride_cn, acc.to(c_ptr.dtype.element_ty), mask=valid)


def gemm_configured(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, scale_a: torch.Tensor,
                    scale_b: torch.Tensor, has_scales: bool, cfg: GemmConfig) -> torch.Tensor:
    """Launch with `cfg` into c [M, N] (inputs already checked by `gemm`); returns c."""
    M, K = a.shape
    N = b.shape[1]
    depth, splits = k_per_split(K, cfg.split_k, cfg.block_k)
    split = splits > 1
    ws = torch.empty((splits, M, N), dtype=torch.float32, device=a.device) if split else c
    even_k = K % cfg.block_k == 0  # depth is whole BLOCK_K steps, so every chunk is then full
    grid = (triton.cdiv(M, cfg.block_m) * triton.cdiv(N, cfg.block_n), splits)
    _gemm_splitk_kernel[grid](a, b, c, ws, scale_a, scale_b, M, N, K, depth,
                              a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1),
                              ws.stride(0) if split else 0, ws.stride(1) if split else 0,
                              BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
                              GROUP_SIZE_M=cfg.group_m, EVEN_K=even_k, SPLIT=split, HAS_SCALES=has_scales,
                              num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    if split:
        block = 1024 if N >= 1024 else triton.next_power_of_2(N)
        _splitk_reduce_kernel[(M, triton.cdiv(N, block))](ws, c, scale_a, scale_b, N, splits,
                                                          ws.stride(0), ws.stride(1), c.stride(0), c.stride(1),
                                                          BLOCK=block, HAS_SCALES=has_scales, num_warps=4)
    return c
