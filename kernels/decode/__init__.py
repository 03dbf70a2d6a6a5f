"""KV-cache decode attention: Triton split-K and no-split kernels, eager and SDPA references, counts."""
from __future__ import annotations

from kernels.decode.counts import decode_flops, decode_min_bytes
from kernels.decode.reference import decode_eager, decode_sdpa
from kernels.decode.triton_decode import decode_attention, decode_attention_nosplit, default_num_splits

__all__ = ["decode_attention", "decode_attention_nosplit", "default_num_splits", "decode_eager", "decode_sdpa",
           "decode_flops", "decode_min_bytes"]
