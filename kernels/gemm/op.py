"""GEMM as a registry op: shapes "MxNxK" (or "m=..,n=..,k=.."), inputs, variants, counts."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from kernels.errors import ShapeError
from kernels.gemm.counts import gemm_flops, gemm_min_bytes
from kernels.gemm.reference import FP8_DTYPE, gemm_cublas
from kernels.gemm.tiles import TILES
from kernels.inputs import check_dtype, generator, randn
from kernels.op_spec import OpSpec, element_size
from kernels.validate import parse_key_values, parse_positive_int

try:  # the Triton kernels are optional: without triton the op still offers cuBLAS
    from kernels.gemm.triton_gemm import HAS_TENSOR_DESCRIPTOR, gemm, gemm_persistent
    HAS_TRITON = True
except ImportError:  # pragma: no cover - exercised only where triton is missing
    HAS_TRITON = HAS_TENSOR_DESCRIPTOR = False


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
    check_dtype("gemm", dtype, GEMM_DTYPES + (torch.float32,))
    device = torch.device(device)
    g = generator(device, seed)
    if FP8_DTYPE is not None and dtype == FP8_DTYPE:
        a = randn((shape.m, shape.k), torch.float32, device, g)
        b_nk = randn((shape.n, shape.k), torch.float32, device, g)
        scale_a = (a.abs().amax() / 448.0).reshape(1).float()
        scale_b = (b_nk.abs().amax() / 448.0).reshape(1).float()
        return ((a / scale_a).to(dtype), (b_nk / scale_b).to(dtype).t(), scale_a, scale_b)
    return (randn((shape.m, shape.k), dtype, device, g), randn((shape.k, shape.n), dtype, device, g))


def gemm_output_bytes(shape: GemmShape, dtype: torch.dtype) -> int:
    """C written once; fp8 GEMMs write bf16."""
    return shape.m * shape.n * (2 if FP8_DTYPE is not None and dtype == FP8_DTYPE else element_size(dtype))


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


OP = OpSpec(
    name="gemm", shape_type=GemmShape, parse_shape=parse_gemm_shape, make_inputs=make_gemm_inputs,
    variants=_gemm_variants(),
    flops=lambda s: gemm_flops(s.m, s.n, s.k),
    min_bytes=lambda s, dtype: gemm_min_bytes(s.m, s.n, s.k, dtype),
    output_bytes=gemm_output_bytes,
    dtypes=GEMM_DTYPES, default_shape="4096x4096x4096", tiles=TILES)
