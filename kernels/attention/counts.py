"""FLOP and byte counts for attention prefill (forward).

FLOPs count 2 per multiply-add. Per kept (query, key) pair, Q K^T is head_dim multiply-adds and
P V another head_dim: 4 * head_dim FLOPs. The softmax (max, exp, sum, divide) and the scaling are
NOT counted, as in FlashAttention's and vendors' TFLOP/s figures.
"""
from __future__ import annotations

import torch


def attention_pairs(q_len: int, kv_len: int, causal: bool) -> int:
    """Kept (query, key) pairs per head. Causal (top-left aligned, q_len == kv_len = S): query i
    sees keys 0..i, S*(S+1)/2 pairs exactly (not a blanket half)."""
    if causal:
        if q_len != kv_len:
            raise ValueError(f"causal counts need q_len == kv_len, got {q_len} and {kv_len}")
        return q_len * (q_len + 1) // 2
    return q_len * kv_len


def attention_flops(batch: int, q_heads: int, q_len: int, kv_len: int, head_dim: int, causal: bool) -> int:
    """4 * batch * q_heads * head_dim * kept pairs (QK^T and PV, 2*head_dim FLOPs each per pair).
    Grouped-query attention does the same FLOPs as multi-head with q_heads heads."""
    return 4 * batch * q_heads * head_dim * attention_pairs(q_len, kv_len, causal)


def attention_min_bytes(batch: int, q_heads: int, kv_heads: int, q_len: int, kv_len: int, head_dim: int,
                        dtype: torch.dtype) -> int:
    """q and o once ([batch, q_heads, q_len, head_dim] each), k and v once ([batch, kv_heads, kv_len,
    head_dim] each). A causal mask does not lower the minimum: every input element is still needed."""
    size = torch.empty((), dtype=dtype).element_size()
    return size * head_dim * batch * (2 * q_heads * q_len + 2 * kv_heads * kv_len)
