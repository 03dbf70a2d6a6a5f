"""KV-cache decode as a registry op: shapes "b=16,h=32,kv=8,ctx=8192,d=128[,max=...][,mixed]", inputs,
variants, counts."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from kernels.decode.counts import decode_flops, decode_lengths, decode_min_bytes
from kernels.decode.reference import decode_eager, decode_sdpa
from kernels.decode.tiles import TILES
from kernels.errors import ShapeError
from kernels.inputs import check_dtype, generator, randn
from kernels.op_spec import OpSpec, element_size
from kernels.validate import check_head_dim, parse_key_values, parse_positive_int

try:  # the Triton kernels are optional: without triton the op still offers the references
    from kernels.decode.triton_decode import decode_attention, decode_attention_nosplit
    HAS_TRITON = True
except ImportError:  # pragma: no cover - exercised only where triton is missing
    HAS_TRITON = False


@dataclass(frozen=True)
class DecodeShape:
    """q [batch, q_heads, head_dim]; caches [batch, kv_heads, max_len, head_dim]; ctx_len is the
    longest cached length (max_len defaults to it). lengths="uniform": every sequence holds ctx_len
    tokens; "mixed": see `decode_lengths`."""

    batch: int
    q_heads: int
    kv_heads: int
    ctx_len: int
    head_dim: int
    max_len: int | None = None
    lengths: str = "uniform"

    def __post_init__(self) -> None:
        if self.q_heads % self.kv_heads:
            raise ShapeError(f"q_heads must be a multiple of kv_heads, got h={self.q_heads}, kv={self.kv_heads}")
        if self.lengths not in ("uniform", "mixed"):
            raise ShapeError(f"lengths must be 'uniform' or 'mixed', got {self.lengths!r}")
        if self.max_len is not None and self.max_len < self.ctx_len:
            raise ShapeError(f"max_len must be at least ctx_len={self.ctx_len}, got {self.max_len}")

    @property
    def cache_len(self) -> int:
        return self.max_len if self.max_len is not None else self.ctx_len

    def __str__(self) -> str:
        s = f"b={self.batch},h={self.q_heads},kv={self.kv_heads},ctx={self.ctx_len},d={self.head_dim}"
        if self.max_len is not None:
            s += f",max={self.max_len}"
        return s + (",mixed" if self.lengths == "mixed" else "")


_DECODE_EXAMPLE = "b=16,h=32,kv=8,ctx=8192,d=128"
_DECODE_KEYS = {"b": "batch", "batch": "batch", "h": "q_heads", "hq": "q_heads", "q_heads": "q_heads",
                "kv": "kv_heads", "hkv": "kv_heads", "kv_heads": "kv_heads", "ctx": "ctx_len", "s": "ctx_len",
                "ctx_len": "ctx_len", "d": "head_dim", "head_dim": "head_dim", "max": "max_len",
                "max_len": "max_len"}


def parse_decode_shape(text: str) -> DecodeShape:
    """'b=16,h=32,kv=8,ctx=8192,d=128' with optional max=<cache length> and the flag mixed (or
    uniform, or lengths=mixed|uniform); kv defaults to h."""
    kv = parse_key_values(text, what="decode", example=_DECODE_EXAMPLE)
    fields: dict[str, Any] = {}
    for key, value in kv.items():
        if key in ("mixed", "uniform") and value == "":
            field, parsed = "lengths", key
        elif key == "lengths":
            if value not in ("mixed", "uniform"):
                raise ShapeError(f"lengths in {text!r} must be 'mixed' or 'uniform', got {value!r}")
            field, parsed = "lengths", value
        elif key in _DECODE_KEYS:
            field = _DECODE_KEYS[key]
            parsed = parse_positive_int(value, key=key, text=text, example=_DECODE_EXAMPLE)
        else:
            raise ShapeError(f"unknown key {key!r} in decode shape {text!r}; expected b, h, kv, ctx, d, max and the"
                             f" flag mixed (e.g. {_DECODE_EXAMPLE!r})")
        if field in fields:
            raise ShapeError(f"decode shape {text!r} gives {field} twice")
        fields[field] = parsed
    missing = [k for k, f in (("b", "batch"), ("h", "q_heads"), ("ctx", "ctx_len"), ("d", "head_dim"))
               if f not in fields]
    if missing:
        raise ShapeError(f"decode shape {text!r} lacks {', '.join(missing)} (expected e.g. {_DECODE_EXAMPLE!r})")
    fields.setdefault("kv_heads", fields["q_heads"])
    check_head_dim(fields["head_dim"], text=text)
    return DecodeShape(**fields)


DECODE_DTYPES = (torch.bfloat16, torch.float16)


def make_decode_inputs(shape: DecodeShape, dtype: torch.dtype, device: torch.device, seed: int = 0) -> tuple:
    """(q [b, h, d], k_cache [b, kv, max_len, d], v_cache, lengths int32 [b], attn_mask); the whole
    cache is random, including positions past each length (which a correct kernel never reads).
    attn_mask is SDPA's boolean mask [b, 1, 1, max_len], built once here as a decode step builds it
    once for all layers (None when every sequence fills its cache); the Triton and eager variants
    ignore it. Building it here keeps the SDPA call free of host syncs (CUDA-graph safe)."""
    check_dtype("decode", dtype, DECODE_DTYPES + (torch.float32,))
    device = torch.device(device)
    g = generator(device, seed)
    q = randn((shape.batch, shape.q_heads, shape.head_dim), dtype, device, g)
    cache = (shape.batch, shape.kv_heads, shape.cache_len, shape.head_dim)
    k_cache = randn(cache, dtype, device, g)
    v_cache = randn(cache, dtype, device, g)
    host_lengths = decode_lengths(shape)
    lengths = torch.tensor(host_lengths, dtype=torch.int32, device=device)
    attn_mask = None
    if any(n != shape.cache_len for n in host_lengths):
        attn_mask = (torch.arange(shape.cache_len, device=device)[None, :] < lengths[:, None].long())[:, None, None, :]
    return (q, k_cache, v_cache, lengths, attn_mask)


def _decode_splitk(q, k_cache, v_cache, lengths, attn_mask=None):
    return decode_attention(q, k_cache, v_cache, lengths)


def _decode_nosplit(q, k_cache, v_cache, lengths, attn_mask=None):
    return decode_attention_nosplit(q, k_cache, v_cache, lengths)


def _decode_eager(q, k_cache, v_cache, lengths, attn_mask=None):
    return decode_eager(q, k_cache, v_cache, lengths)


def _decode_sdpa(q, k_cache, v_cache, lengths, attn_mask=None):
    return decode_sdpa(q, k_cache, v_cache, lengths, attn_mask)


def _decode_variants() -> dict[str, Callable[..., torch.Tensor]]:
    variants: dict[str, Callable[..., torch.Tensor]] = {}
    if HAS_TRITON:
        variants["triton-splitk"] = _decode_splitk
        variants["triton-nosplit"] = _decode_nosplit
    variants["eager"] = _decode_eager
    variants["sdpa"] = _decode_sdpa
    return variants


def decode_output_bytes(shape: DecodeShape, dtype: torch.dtype) -> int:
    """o [b, h, d] written once."""
    return shape.batch * shape.q_heads * shape.head_dim * element_size(dtype)


OP = OpSpec(
    name="decode", shape_type=DecodeShape, parse_shape=parse_decode_shape, make_inputs=make_decode_inputs,
    variants=_decode_variants(),
    flops=lambda s: decode_flops(s.q_heads, s.head_dim, decode_lengths(s)),
    min_bytes=lambda s, dtype: decode_min_bytes(s.q_heads, s.kv_heads, s.head_dim, decode_lengths(s), dtype),
    output_bytes=decode_output_bytes,
    dtypes=DECODE_DTYPES, default_shape="b=16,h=32,kv=8,ctx=8192,d=128", tiles=TILES)
