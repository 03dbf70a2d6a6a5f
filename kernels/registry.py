"""The ops the profiler can run, by name: shapes, inputs, implementations ("variants") and counts.

    op = get_op("attention")
    shape = op.parse_shape("b=4,h=32,s=4096,d=128,causal")
    inputs = op.make_inputs(shape, torch.bfloat16, torch.device("cuda"), 0)
    o = op.variants["triton"](*inputs)
    op.flops(shape), op.min_bytes(shape, torch.bfloat16)

Shape strings: gemm "MxNxK" (or "m=..,n=..,k=.."); attention "b=4,h=32,kv=8,s=4096,d=128,causal"
(kv defaults to h); decode "b=16,h=32,kv=8,ctx=8192,d=128[,max=...][,mixed]". A variant that cannot
run on this machine raises kernels.errors.NotSupportedError.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from kernels.errors import KernelError, NotSupportedError, ShapeError
from kernels.attention.counts import attention_flops, attention_min_bytes
from kernels.attention.reference import attention_eager, sdpa
from kernels.decode.counts import decode_flops, decode_min_bytes
from kernels.decode.reference import decode_eager, decode_sdpa
from kernels.gemm.counts import gemm_flops, gemm_min_bytes
from kernels.gemm.reference import gemm_cublas
from kernels.validate import check_head_dim, parse_bool, parse_key_values, parse_positive_int

try:  # the Triton kernels are optional: without triton the registry still offers the references
    from kernels.attention.triton_flash import HAS_TENSOR_DESCRIPTOR as ATTN_HAS_TMA
    from kernels.attention.triton_flash import flash_attention
    from kernels.decode.triton_decode import decode_attention, decode_attention_nosplit
    from kernels.gemm.triton_gemm import HAS_TENSOR_DESCRIPTOR, gemm, gemm_persistent
    HAS_TRITON = True
except ImportError:  # pragma: no cover - exercised only where triton is missing
    HAS_TRITON = False
    HAS_TENSOR_DESCRIPTOR = ATTN_HAS_TMA = False

FP8_DTYPE = getattr(torch, "float8_e4m3fn", None)


@dataclass(frozen=True)
class OpSpec:
    """One op: how to read its shapes, make its inputs, run it and count its work."""

    name: str                                            # "gemm" | "attention" | "decode"
    shape_type: type                                     # frozen dataclass of the op's sizes
    parse_shape: Callable[[str], Any]                    # text -> shape_type; ShapeError on bad text
    make_inputs: Callable[[Any, torch.dtype, torch.device, int], tuple]  # (shape, dtype, device, seed)
    variants: dict[str, Callable[..., torch.Tensor]]     # name -> fn(*inputs) -> output
    flops: Callable[[Any], int]                          # exact FLOPs (2 per multiply-add)
    min_bytes: Callable[[Any, torch.dtype], int]         # each input read once, output written once
    dtypes: tuple[torch.dtype, ...]
    default_shape: str


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def _randn(shape, dtype: torch.dtype, device: torch.device, g: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    # Normal values are never exactly zero in practice, and zeros would hide unwritten outputs.
    return (torch.randn(shape, generator=g, device=device, dtype=torch.float32) * scale).to(dtype)


def _check_dtype(op: str, dtype: torch.dtype, allowed: tuple[torch.dtype, ...]) -> None:
    if dtype not in allowed:
        raise ShapeError(f"{op} inputs must be one of {[str(d).replace('torch.', '') for d in allowed]}, got {dtype}")


# ----------------------------------------------------------------------------------------------
# GEMM
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GemmShape:
    """C [m, n] = A [m, k] @ B [k, n]."""

    m: int
    n: int
    k: int

    def __str__(self) -> str:
        return f"{self.m}x{self.n}x{self.k}"


_GEMM_EXAMPLE = "4096x4096x4096"


def parse_gemm_shape(text: str) -> GemmShape:
    """'MxNxK' or 'm=..,n=..,k=..'."""
    if isinstance(text, str) and re.fullmatch(r"\s*[0-9]+\s*[xX]\s*[0-9]+\s*[xX]\s*[0-9]+\s*", text):
        m, n, k = (parse_positive_int(p.strip(), key=name, text=text, example=_GEMM_EXAMPLE)
                   for p, name in zip(re.split(r"[xX]", text), "mnk"))
        return GemmShape(m, n, k)
    kv = parse_key_values(text, what="gemm", example=_GEMM_EXAMPLE)
    if set(kv) != {"m", "n", "k"}:
        raise ShapeError(f"gemm shape must be 'MxNxK' or 'm=..,n=..,k=..' (e.g. {_GEMM_EXAMPLE!r}), got {text!r}")
    return GemmShape(*(parse_positive_int(kv[c], key=c, text=text, example=_GEMM_EXAMPLE) for c in "mnk"))


GEMM_DTYPES = (torch.bfloat16, torch.float16) + ((FP8_DTYPE,) if FP8_DTYPE is not None else ())


def make_gemm_inputs(shape: GemmShape, dtype: torch.dtype, device: torch.device, seed: int = 0) -> tuple:
    """(a [m, k], b [k, n]) for bf16/fp16. For fp8 e4m3: (a, b, scale_a, scale_b), quantized per
    tensor from normal data (scale = amax / 448), with b stored K-contiguous (b = b_nk.T), the
    layout fp8 tensor cores and torch._scaled_mm want."""
    _check_dtype("gemm", dtype, GEMM_DTYPES + (torch.float32,))
    device = torch.device(device)
    g = _generator(device, seed)
    if FP8_DTYPE is not None and dtype == FP8_DTYPE:
        a = _randn((shape.m, shape.k), torch.float32, device, g)
        b_nk = _randn((shape.n, shape.k), torch.float32, device, g)
        scale_a = (a.abs().amax() / 448.0).reshape(1).float()
        scale_b = (b_nk.abs().amax() / 448.0).reshape(1).float()
        return ((a / scale_a).to(dtype), (b_nk / scale_b).to(dtype).t(), scale_a, scale_b)
    return (_randn((shape.m, shape.k), dtype, device, g), _randn((shape.k, shape.n), dtype, device, g))


def _gemm_triton(a, b, scale_a=None, scale_b=None):
    return gemm(a, b, scale_a, scale_b)


def _gemm_triton_persistent(a, b, scale_a=None, scale_b=None):
    return gemm_persistent(a, b, scale_a, scale_b)


def _gemm_variants() -> dict[str, Callable[..., torch.Tensor]]:
    variants: dict[str, Callable[..., torch.Tensor]] = {}
    if HAS_TRITON:
        variants["triton"] = _gemm_triton
        if HAS_TENSOR_DESCRIPTOR:
            variants["triton-persistent"] = _gemm_triton_persistent
    variants["cublas"] = gemm_cublas
    return variants


# ----------------------------------------------------------------------------------------------
# Attention prefill
# ----------------------------------------------------------------------------------------------
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
    _check_dtype("attention", dtype, ATTENTION_DTYPES + (torch.float32,))
    device = torch.device(device)
    g = _generator(device, seed)
    q = _randn((shape.batch, shape.q_heads, shape.seq_len, shape.head_dim), dtype, device, g)
    k = _randn((shape.batch, shape.kv_heads, shape.seq_len, shape.head_dim), dtype, device, g)
    v = _randn((shape.batch, shape.kv_heads, shape.seq_len, shape.head_dim), dtype, device, g)
    return (q, k, v, shape.causal)


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
        if ATTN_HAS_TMA:
            variants["triton-tma"] = _attention_triton_tma
    variants["eager"] = _attention_eager
    for backend in ("flash", "cudnn", "efficient", "math"):
        variants[f"sdpa-{backend}"] = _sdpa_variant(backend)
    return variants


# ----------------------------------------------------------------------------------------------
# Decode
# ----------------------------------------------------------------------------------------------
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


def decode_lengths(shape: DecodeShape) -> list[int]:
    """The cached length of each sequence, a function of the shape alone (so counts are exact):
    uniform: ctx_len for all; mixed: ceil(ctx_len * (i+1) / batch) for sequence i, evenly spread
    up to ctx_len (mean about ctx_len / 2)."""
    if shape.lengths == "uniform":
        return [shape.ctx_len] * shape.batch
    return [-(-shape.ctx_len * (i + 1) // shape.batch) for i in range(shape.batch)]


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
    _check_dtype("decode", dtype, DECODE_DTYPES + (torch.float32,))
    device = torch.device(device)
    g = _generator(device, seed)
    q = _randn((shape.batch, shape.q_heads, shape.head_dim), dtype, device, g)
    cache = (shape.batch, shape.kv_heads, shape.cache_len, shape.head_dim)
    k_cache = _randn(cache, dtype, device, g)
    v_cache = _randn(cache, dtype, device, g)
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


# ----------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------
_OPS: dict[str, OpSpec] = {
    "gemm": OpSpec(
        name="gemm", shape_type=GemmShape, parse_shape=parse_gemm_shape, make_inputs=make_gemm_inputs,
        variants=_gemm_variants(),
        flops=lambda s: gemm_flops(s.m, s.n, s.k),
        min_bytes=lambda s, dtype: gemm_min_bytes(s.m, s.n, s.k, dtype),
        dtypes=GEMM_DTYPES, default_shape="4096x4096x4096"),
    "attention": OpSpec(
        name="attention", shape_type=AttentionShape, parse_shape=parse_attention_shape,
        make_inputs=make_attention_inputs, variants=_attention_variants(),
        flops=lambda s: attention_flops(s.batch, s.q_heads, s.seq_len, s.seq_len, s.head_dim, s.causal),
        min_bytes=lambda s, dtype: attention_min_bytes(s.batch, s.q_heads, s.kv_heads, s.seq_len, s.seq_len,
                                                       s.head_dim, dtype),
        dtypes=ATTENTION_DTYPES, default_shape="b=4,h=32,s=4096,d=128,causal"),
    "decode": OpSpec(
        name="decode", shape_type=DecodeShape, parse_shape=parse_decode_shape, make_inputs=make_decode_inputs,
        variants=_decode_variants(),
        flops=lambda s: decode_flops(s.q_heads, s.head_dim, decode_lengths(s)),
        min_bytes=lambda s, dtype: decode_min_bytes(s.q_heads, s.kv_heads, s.head_dim, decode_lengths(s), dtype),
        dtypes=DECODE_DTYPES, default_shape="b=16,h=32,kv=8,ctx=8192,d=128"),
}


def list_ops() -> list[str]:
    return list(_OPS)


def get_op(name: str) -> OpSpec:
    """The OpSpec called `name`; ShapeError listing the valid names otherwise."""
    try:
        return _OPS[name]
    except (KeyError, TypeError):
        raise ShapeError(f"unknown op {name!r}; valid ops: {', '.join(_OPS)}") from None


__all__ = ["OpSpec", "GemmShape", "AttentionShape", "DecodeShape", "get_op", "list_ops", "decode_lengths",
           "KernelError", "HAS_TRITON"]
