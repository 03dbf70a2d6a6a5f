"""The subject kernels: Triton GEMM, flash-attention prefill and KV-cache decode, with their
PyTorch references and exact FLOP/byte counts, reachable by name through the registry:

    from kernels import get_op, list_ops
    op = get_op("decode"); shape = op.parse_shape(op.default_shape)

Each op keeps its optimized kernel (`triton_*.py`), its reference (`reference.py`) and its counts
(`counts.py`) apart; the optimized path never imports the reference.
"""
from __future__ import annotations

from kernels.registry import (
    HAS_TRITON,
    AttentionShape,
    DecodeShape,
    GemmShape,
    OpSpec,
    decode_lengths,
    get_op,
    list_ops,
)

__all__ = ["OpSpec", "GemmShape", "AttentionShape", "DecodeShape", "decode_lengths", "get_op", "list_ops",
           "HAS_TRITON"]
