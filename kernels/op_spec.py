"""What an op is to the registry (`OpSpec`) and what its kernels' tiles are known to do (`TileModel`).

Each op's folder builds one `OpSpec` (kernels/<op>/op.py) and, where it knows its kernels' tiles,
one `TileModel` (kernels/<op>/tiles.py); the registry lists them by name, and the shared code
(kernelprof's counters, estimates and CLI) reaches an op only through these two types.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kernels.errors import ShapeError

# The kernels' launch as ncu saw it: (kernel name, grid) per kernel of one call.
Launches = Sequence[tuple[str, str]]


def _no_computed_flops(variant: str, shape: Any, tile: dict[str, Any],
                       compute_capability: str | None) -> tuple[int | None, str]:
    return None, "no tile model for this op"


def _no_extra_bytes(variant: str, shape: Any, tile: dict[str, Any]) -> tuple[int, str]:
    return 0, ""


def _no_reread_cause(shape: Any, tile: dict[str, Any], ratio: float) -> str | None:
    return None


def _no_tile_config(variant: str, inputs: tuple) -> dict[str, Any]:
    return {}


def _no_launch_notes(variant: str, tile: dict[str, Any], launches: Launches) -> list[str]:
    return []


@dataclass(frozen=True)
class TileModel:
    """What an op's kernels compute and move beyond its exact counts, and how to read their counters.

    Every field defaults to knowing nothing, so an op without a model still gets its exact counts
    and the generic verdicts. `tile` is the dict `tile_config` returned for the profiled call."""

    # (FLOPs of the tiles this variant computes or None if unknown, a sentence saying where they come from)
    computed_flops: Callable[[str, Any, dict[str, Any], str | None], tuple[int | None, str]] = _no_computed_flops
    # (bytes written then read back beyond the minimum, e.g. split-K partials, and what they are)
    extra_bytes: Callable[[str, Any, dict[str, Any]], tuple[int, str]] = _no_extra_bytes
    # why DRAM reads came out `ratio` x the minimum, or None for the generic L2-miss sentence
    reread_cause: Callable[[Any, dict[str, Any], float], str | None] = _no_reread_cause
    # the tile a variant launched with, read after warm-up (autotuner or dispatcher); {} for libraries
    tile_config: Callable[[str, tuple], dict[str, Any]] = _no_tile_config
    # notes when the profiled launches contradict `tile` (then the byte model may be off)
    launch_notes: Callable[[str, dict[str, Any], Launches], list[str]] = _no_launch_notes


NO_TILE_MODEL = TileModel()


@dataclass(frozen=True)
class OpSpec:
    """One op: how to read its shapes, make its inputs, run it and count its work."""

    name: str                                            # "gemm" | "attention" | "decode" | ...
    shape_type: type                                     # frozen dataclass of the op's sizes
    parse_shape: Callable[[str], Any]                    # text -> shape_type; ShapeError on bad text
    make_inputs: Callable[[Any, torch.dtype, torch.device, int], tuple]  # (shape, dtype, device, seed)
    variants: dict[str, Callable[..., torch.Tensor]]     # name -> fn(*inputs) -> output; the first is the default
    flops: Callable[[Any], int]                          # exact FLOPs (2 per multiply-add)
    min_bytes: Callable[[Any, torch.dtype], int]         # each input read once, output written once
    output_bytes: Callable[[Any, torch.dtype], int]      # the output's part of min_bytes
    dtypes: tuple[torch.dtype, ...]
    default_shape: str
    tiles: TileModel = field(default=NO_TILE_MODEL)

    def resolve_variant(self, variant: str | None) -> str:
        """`variant`, or the default (first) one when None; ShapeError listing the valid names otherwise."""
        name = variant or next(iter(self.variants))
        if name not in self.variants:
            raise ShapeError(f"unknown variant {name!r} of {self.name}; valid: {', '.join(self.variants)}")
        return name


def tile_int(tile: dict[str, Any], key: str) -> int | None:
    """A positive tile size from a tile-config dict, None when absent or not a positive number."""
    v = tile.get(key)
    return int(v) if isinstance(v, (int, float)) and v > 0 else None


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def autotuned_config(tuner: Any) -> dict[str, Any]:
    """The config a Triton autotuner used on its last call (its tile sizes, warps, stages)."""
    cfg = getattr(tuner, "best_config", None)
    if cfg is None:
        return {}
    out: dict[str, Any] = dict(cfg.kwargs)
    out["num_warps"] = cfg.num_warps
    out["num_stages"] = cfg.num_stages
    out["source"] = "triton autotuner best_config"
    return out
