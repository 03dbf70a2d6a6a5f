"""The ops the profiler can run, by name: shapes, inputs, implementations ("variants"), counts and tile models.

    op = get_op("attention")
    shape = op.parse_shape("b=4,h=32,s=4096,d=128,causal")
    inputs = op.make_inputs(shape, torch.bfloat16, torch.device("cuda"), 0)
    o = op.variants["triton"](*inputs)
    op.flops(shape), op.min_bytes(shape, torch.bfloat16)

Each op is a folder kernels/<name>/ whose op.py defines `OP`, an `OpSpec` (kernels/op_spec.py);
adding an op is that folder plus its name in `BUILTIN_OPS`. Code outside kernels/ may add its own
with `register_op(spec)`.

Shape strings: gemm "MxNxK" (or "m=..,n=..,k=.."); attention "b=4,h=32,kv=8,s=4096,d=128,causal"
(kv defaults to h); decode "b=16,h=32,kv=8,ctx=8192,d=128[,max=...][,mixed]". A variant that cannot
run on this machine raises kernels.errors.NotSupportedError.
"""
from __future__ import annotations

import importlib

from kernels.errors import KernelError, ShapeError
from kernels.op_spec import NO_TILE_MODEL, OpSpec, TileModel

# The built-in ops' shapes, importable from here and from `kernels` as before the ops had folders.
from kernels.attention.op import AttentionShape
from kernels.decode.op import DecodeShape, decode_lengths
from kernels.gemm.op import GemmShape

try:  # the Triton kernels are optional: without triton the ops still offer their references
    import triton  # noqa: F401
    HAS_TRITON = True
except ImportError:  # pragma: no cover - exercised only where triton is missing
    HAS_TRITON = False

# Each name is a folder kernels/<name>/ whose op.py defines OP; the order is the order ops are listed in.
BUILTIN_OPS = ("gemm", "attention", "decode")

_OPS: dict[str, OpSpec] = {}


def register_op(spec: OpSpec, *, replace: bool = False) -> OpSpec:
    """Make `spec` reachable as get_op(spec.name); KernelError if the name is taken (unless replace)."""
    if not isinstance(spec, OpSpec):
        raise KernelError(f"register_op takes an OpSpec, got {type(spec).__name__}")
    if spec.name in _OPS and not replace:
        raise KernelError(f"an op called {spec.name!r} is registered already")
    _OPS[spec.name] = spec
    return spec


def unregister_op(name: str) -> None:
    """Forget the op called `name` (tests register and drop their own)."""
    _OPS.pop(name, None)


for _name in BUILTIN_OPS:
    register_op(importlib.import_module(f"kernels.{_name}.op").OP)


def list_ops() -> list[str]:
    return list(_OPS)


def get_op(name: str) -> OpSpec:
    """The OpSpec called `name`; ShapeError listing the valid names otherwise."""
    try:
        return _OPS[name]
    except (KeyError, TypeError):
        raise ShapeError(f"unknown op {name!r}; valid ops: {', '.join(_OPS)}") from None


__all__ = ["OpSpec", "TileModel", "NO_TILE_MODEL", "GemmShape", "AttentionShape", "DecodeShape", "get_op",
           "list_ops", "register_op", "unregister_op", "decode_lengths", "KernelError", "HAS_TRITON"]
