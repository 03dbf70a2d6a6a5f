"""Attention prefill: Triton flash-attention forward, eager and SDPA references, FLOP/byte counts."""
from __future__ import annotations

from kernels.attention.counts import attention_flops, attention_min_bytes, attention_pairs
from kernels.attention.reference import attention_eager, sdpa

try:  # the Triton kernels need triton; the references and counts do not
    from kernels.attention.triton_flash import flash_attention
except ImportError:  # pragma: no cover - only where triton is missing
    pass

__all__ = ["flash_attention", "attention_eager", "sdpa", "attention_flops", "attention_min_bytes", "attention_pairs"]
