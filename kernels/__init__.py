"""The subject kernels: Triton GEMM, flash-attention prefill and KV-cache decode, with their
PyTorch references and exact FLOP/byte counts, reachable by name through the registry:

    from kernels import get_op, list_ops
    op = get_op("decode"); shape = op.parse_shape(op.default_shape)

Each op's folder holds what is known about it: its registry entry (`op.py`: shapes and their
parser, inputs, variants), its optimized kernel (`triton_*.py`), its reference (`reference.py`), its
counts (`counts.py`) and its tile model (`tiles.py`), kept apart; the optimized path never imports
the reference. Errors are `kernels.errors`' own (this package never imports kernelprof).
"""
from __future__ import annotations

__all__ = ["OpSpec", "TileModel", "GemmShape", "AttentionShape", "DecodeShape", "decode_lengths", "get_op",
           "list_ops", "register_op", "HAS_TRITON"]


# The registry imports torch: load it on first use, so that `kernels.errors` (which kernelprof's
# errors are) stays light to import (PEP 562).
def __getattr__(name: str):
    if name in __all__:
        from kernels import registry

        value = getattr(registry, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
