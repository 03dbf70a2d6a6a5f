"""Attention prefill as a registry op: shapes "b=4,h=32,kv=8,s=4096,d=128,causal", inputs, variants, counts."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from kernels.attention.counts import attention_flops, attention_min_bytes
from kernels.attention.reference import attention_eager, sdpa
from kernels.attention.tiles import TILES
from kernels.errors import NotSupportedError, ShapeError
from kernels.inputs import check_dtype, generator, randn
from kernels.op_spec import OpSpec, element_size
from kernels.validate import check_head_dim, parse_bool, parse_key_values, parse_positive_int

try:  # the Triton kernels are optional: without triton the op still offers the references
    from kernels.attention.triton_flash import HAS_TENSOR_DESCRIPTOR, flash_attention
    HAS_TRITON = True
except ImportError:  # pragma: no cover - exercised only where triton is missing
    HAS_TRITON = HAS_TENSOR_DESCRIPTOR = False


@dataclass(frozen=True)
class AttentionShape:
    """q [batch, q_heads, seq_len, head_dim]; k, v [batch, kv_heads, seq_len, head_dim]."""

    batch: int
    q_heads: int
    kv_heads: int
    seq_len: int
    head_dim: int
    causal: bool

    def __post_init__(self) -> None:
        if self.q_heads % self.kv_heads:
            raise ShapeError(f"q_heads must be a multiple of kv_heads, got h={self.q_heads}, kv={self.kv_heads}")

    def __str__(self) -> str:
        return (f"b={self.batch},h={self.q_heads},kv={self.kv_heads},s={self.seq_len},d={self.head_dim}"
                + (",causal" if self.causal else ""))


_ATTN_EXAMPLE = "b=4,h=32,s=4096,d=128,causal"
_ATTN_KEYS = {"b": "batch", "batch": "batch", "h": "q_heads", "hq": "q_heads", "q_heads": "q_heads",
              "kv": "kv_heads", "hkv": "kv_heads", "kv_heads": "kv_heads", "s": "seq_len", "seq": "seq_len",
              "seq_len": "seq_len", "d": "head_dim", "head_dim": "head_dim", "causal": "causal"}


def parse_attention_shape(text: str) -> AttentionShape:
    """'b=4,h=32,kv=8,s=4096,d=128,causal': kv defaults to h; causal is a bare flag or causal=0/1."""
    kv = parse_key_values(text, what="attention", example=_ATTN_EXAMPLE)
    fields: dict[str, Any] = {}
    for key, value in kv.items():
        if key not in _ATTN_KEYS:
            raise ShapeError(f"unknown key {key!r} in attention shape {text!r}; expected b, h, kv, s, d and the"
                             f" flag causal (e.g. {_ATTN_EXAMPLE!r})")
        field = _ATTN_KEYS[key]
        if field in fields:
            raise ShapeError(f"attention shape {text!r} gives {field} twice")
        fields[field] = (parse_bool(value, key=key, text=text) if field == "causal"
                         else parse_positive_int(value, key=key, text=text, example=_ATTN_EXAMPLE))
    missing = [k for k, f in (("b", "batch"), ("h", "q_heads"), ("s", "seq_len"), ("d", "head_dim")) if f not in fields]
    if missing:
        raise ShapeError(f"attention shape {text!r} lacks {', '.join(missing)} (expected e.g. {_ATTN_EXAMPLE!r})")
    fields.setdefault("kv_heads", fields["q_heads"])
    fields.setdefault("causal", False)
    check_head_dim(fields["head_dim"], text=text)
    return AttentionShape(**fields)


ATTENTION_DTYPES = (torch.bfloat16, torch.float16)


def make_attention_inputs(shape: AttentionShape, dtype: torch.dtype, device: torch.device, seed: int = 0) -> tuple:
    """(q, k, v, causal): q [b, h, s, d], k and v [b, kv, s, d], standard normal."""
    check_dtype("attention", dtype, ATTENTION_DTYPES + (torch.float32,))
    device = torch.device(device)
    g = generator(device, seed)
    q = randn((shape.batch, shape.q_heads, shape.seq_len, shape.head_dim), dtype, device, g)
    k = randn((shape.batch, shape.kv_heads, shape.seq_len, shape.head_dim), dtype, device, g)
    v = randn((shape.batch, shape.kv_heads, shape.seq_len, shape.head_dim), dtype, device, g)
    return (q, k, v, shape.causal)


def attention_output_bytes(shape: AttentionShape, dtype: torch.dtype) -> int:
    """o [b, h, s, d] written once."""
    return shape.batch * shape.q_heads * shape.seq_len * shape.head_dim * element_size(dtype)


def _attention_triton(q, k, v, causal=False):
    return flash_attention(q, k, v, causal)


def _attention_triton_tma(q, k, v, causal=False):
    return flash_attention(q, k, v, causal, use_tma=True)


def _attention_eager(q, k, v, causal=False):
    return attention_eager(q, k, v, causal)


def _sdpa_variant(backend: str) -> Callable[..., torch.Tensor]:
    def run(q, k, v, causal=False):
        if backend in ("cudnn", "efficient") and q.device.type != "cuda":
            raise NotSupportedError(f"SDPA's {backend} backend needs a CUDA GPU; the inputs are on {q.device}")
        return sdpa(q, k, v, causal, backend=backend)

    run.__name__ = f"sdpa_{backend}"
    return run


def _attention_variants() -> dict[str, Callable[..., torch.Tensor]]:
    variants: dict[str, Callable[..., torch.Tensor]] = {}
    if HAS_TRITON:
        variants["triton"] = _attention_triton
        if HAS_TENSOR_DESCRIPTOR:
            variants["triton-tma"] = _attention_triton_tma
    variants["eager"] = _attention_eager
    for backend in ("flash", "cudnn", "efficient", "math"):
        variants[f"sdpa-{backend}"] = _sdpa_variant(backend)
    return variants


OP = OpSpec(
    name="attention", shape_type=AttentionShape, parse_shape=parse_attention_shape,
    make_inputs=make_attention_inputs, variants=_attention_variants(),
    flops=lambda s: attention_flops(s.batch, s.q_heads, s.seq_len, s.seq_len, s.head_dim, s.causal),
    min_bytes=lambda s, dtype: attention_min_bytes(s.batch, s.q_heads, s.kv_heads, s.seq_len, s.seq_len,
                                                   s.head_dim, dtype),
    output_bytes=attention_output_bytes,
    dtypes=ATTENTION_DTYPES, default_shape="b=4,h=32,s=4096,d=128,causal", tiles=TILES)
