"""KV-cache decode attention: Triton split-K and no-split kernels, eager and SDPA references, counts."""
from __future__ import annotations

from kernels.decode.counts import decode_flops, decode_min_bytes
from kernels.decode.dispatch import DecodeConfig, choose_decode_config, load_table, rule_config
from kernels.decode.reference import decode_eager, decode_eager_batched, decode_sdpa

try:  # the Triton kernels need triton; the references and counts do not
    from kernels.decode.triton_decode import decode_attention, decode_attention_nosplit, default_num_splits
    from kernels.decode.triton_decode import resolve_decode_config
except ImportError:  # pragma: no cover - only where triton is missing
    pass

__all__ = ["decode_attention", "decode_attention_nosplit", "default_num_splits", "decode_eager", "decode_eager_batched",
           "decode_sdpa",
           "decode_flops", "decode_min_bytes", "DecodeConfig", "choose_decode_config", "load_table", "rule_config",
           "resolve_decode_config"]
