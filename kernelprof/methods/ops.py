"""An op named on the command line -> the registry's OpSpec, parsed shape, variant and torch dtype.

Used by `kernelprof counters` (and its ncu target) and `kernelprof counters --utilization`.
"""
from __future__ import annotations

from kernelprof import errors as _errors
from kernelprof.errors import UsageError
from kernelprof.estimates.datasheets import normalize_dtype


_TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "fp8": "float8_e4m3fn"}


def torch_dtype(name: str):
    """'bf16' / 'bfloat16' / 'torch.bfloat16' -> torch.bfloat16; UsageError for names ops don't take."""
    import torch

    try:
        key = normalize_dtype(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if key not in _TORCH_DTYPES or not hasattr(torch, _TORCH_DTYPES[key]):
        raise UsageError(f"dtype {name!r} is not one the ops take; use bf16, fp16, fp32 or fp8")
    return getattr(torch, _TORCH_DTYPES[key])


def resolve_kernel(op: str, variant: str | None, shape: str | None, dtype: str):
    """(OpSpec, shape object, variant name, torch dtype), raising the registry's errors for bad names."""
    from kernels.registry import get_op

    spec = get_op(op)
    variant = variant or next(iter(spec.variants))
    if variant not in spec.variants:
        raise _errors.ShapeError(f"unknown variant {variant!r} of {op}; valid: {', '.join(spec.variants)}")
    shape_obj = spec.parse_shape(shape or spec.default_shape)
    return spec, shape_obj, variant, torch_dtype(dtype)
