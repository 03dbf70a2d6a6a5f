"""FLOP and byte counts for decode attention (one query token per sequence against its cache).

FLOPs count 2 per multiply-add: per (query head, valid cached key), q.k is head_dim multiply-adds
and p*v another head_dim, so 4 * head_dim FLOPs. Softmax exponentials and the split-K merge are NOT
counted.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def decode_flops(q_heads: int, head_dim: int, lengths: Sequence[int]) -> int:
    """4 * q_heads * head_dim * sum(lengths)."""
    return 4 * q_heads * head_dim * int(sum(lengths))


def decode_min_bytes(q_heads: int, kv_heads: int, head_dim: int, lengths: Sequence[int], dtype: torch.dtype) -> int:
    """The valid part of K and V once (kv_heads * head_dim per cached token each) plus q and o
    (batch * q_heads * head_dim each). Cache positions past a sequence's length are not needed. The
    int32 lengths tensor (4 bytes a sequence) is left out, as are the split-K partials (scratch)."""
    size = torch.empty((), dtype=dtype).element_size()
    batch = len(lengths)
    return size * head_dim * (2 * kv_heads * int(sum(lengths)) + 2 * batch * q_heads)


def decode_lengths(shape: Any) -> list[int]:
    """The cached length of each sequence of a DecodeShape, a function of the shape alone (so counts
    are exact): uniform: ctx_len for all; mixed: ceil(ctx_len * (i+1) / batch) for sequence i, evenly
    spread up to ctx_len (mean about ctx_len / 2)."""
    if shape.lengths == "uniform":
        return [shape.ctx_len] * shape.batch
    return [-(-shape.ctx_len * (i + 1) // shape.batch) for i in range(shape.batch)]
