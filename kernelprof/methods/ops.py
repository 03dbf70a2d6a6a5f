"""An op named on the command line -> the registry's OpSpec, parsed shape, variant and dtype (`resolve_kernel`).

The one place op, variant, shape and dtype names are resolved: every command that runs a registry op
(`kernel`, `sweep`, `compare`, `counters` and its ncu target, `utilization`, the calibration suite)
comes through here, so a bad name gets the same answer everywhere, with or without a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class KernelRequest:
    """One registry op at one variant, shape and dtype, every name checked."""

    op: Any            # kernels.op_spec.OpSpec
    variant: str
    shape: Any         # op.shape_type
    dtype: str         # canonical: "bf16", "fp16", "fp32" or "fp8"
    torch_dtype: Any   # torch.dtype


def resolve_kernel(op: Any, variant: str | None, shape: str | None, dtype: Any) -> KernelRequest:
    """Resolve and check every name before any GPU work: the op (ShapeError listing the valid ones),
    the variant (the op's first when None), the shape (the op's default when None) and the dtype."""
    from kernelprof.validate import check_dtype
    from kernels.registry import get_op, list_ops

    if not isinstance(op, str):
        raise UsageError(f"op must be a name ({', '.join(list_ops())}), got {op!r}")
    spec = get_op(op)
    variant = spec.resolve_variant(variant)
    shape_obj = spec.parse_shape(shape if shape is not None else spec.default_shape)
    key = check_dtype(dtype, spec.name)
    return KernelRequest(op=spec, variant=variant, shape=shape_obj, dtype=key, torch_dtype=torch_dtype(key))
