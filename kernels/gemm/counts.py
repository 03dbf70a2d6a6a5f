"""FLOP and byte counts for C = A @ B, A [M, K], B [K, N].

FLOPs count 2 per multiply-add (the convention of vendor peak FLOP/s figures).
"""
from __future__ import annotations

import torch


def gemm_flops(m: int, n: int, k: int) -> int:
    """Exact: M*N*K multiply-adds = 2*M*N*K FLOPs (the fp8 scale multiply, M*N, is not counted)."""
    return 2 * m * n * k


def gemm_min_bytes(m: int, n: int, k: int, dtype: torch.dtype) -> int:
    """Each input read once and C written once: (M*K + K*N) input elements plus M*N output
    elements. fp8 inputs write a bf16 C and read two float32 scales."""
    in_size = torch.empty((), dtype=dtype).element_size()
    fp8 = getattr(torch, "float8_e4m3fn", None)
    if fp8 is not None and dtype == fp8:
        return (m * k + k * n) * in_size + m * n * 2 + 2 * 4
    return (m * k + k * n + m * n) * in_size
