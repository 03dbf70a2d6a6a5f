"""What a kernel's tiles compute and move beyond the op's exact counts (`AnalyticCounts`).

The per-op models (masked causal tiles, GQA rows padded to the MMA tile, split-K partials) live with
each op, in kernels/<op>/tiles.py; this module reaches them through the registry's `OpSpec.tiles`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernelprof.estimates.datasheets import datasheet_for
from kernelprof.methods.ops import torch_dtype
# Re-exported: the counters' tests and benchmarks read the per-op models from here.
from kernels.attention.tiles import causal_computed_pairs, full_computed_pairs  # noqa: F401
from kernels.decode.tiles import decode_computed_keys  # noqa: F401
from kernels.op_spec import cdiv as _cdiv, tile_int as _int  # noqa: F401


@dataclass(frozen=True)
class AnalyticCounts:
    """The op's exact counts, and what this kernel's tiles are known to compute and move besides."""

    flops: int                       # exact, 2 per multiply-add (kernels/*/counts.py)
    min_bytes: int                   # every input read once, the output written once
    output_bytes: int
    min_read_bytes: int              # min_bytes - output_bytes
    computed_flops: int | None       # FLOPs of the tiles the kernel computes (padding), None if unknown
    computed_flops_note: str
    extra_read_bytes: int            # known reads beyond the minimum (split-K partials)
    extra_write_bytes: int           # known writes beyond the output (split-K partials)
    extra_bytes_note: str
    roofline_time_s: float | None    # max(FLOPs / peak, bytes / bandwidth) from the datasheet
    roofline_note: str


def computed_flops(op: str, variant: str, shape: Any, tile: dict[str, Any],
                   compute_capability: str | None) -> tuple[int | None, str]:
    """FLOPs of the tiles this variant computes, and a sentence saying where they come from."""
    from kernels.registry import get_op

    return get_op(op).tiles.computed_flops(variant, shape, tile, compute_capability)


def split_k_bytes(op: str, variant: str, shape: Any, tile: dict[str, Any]) -> tuple[int, str]:
    """Bytes written and read back beyond the minimum (a split-K decode's partials), and what they are."""
    from kernels.registry import get_op

    return get_op(op).tiles.extra_bytes(variant, shape, tile)


def analytic_counts(op: str, variant: str, shape_text: str, dtype: str, tile: dict[str, Any],
                    device_name: str | None, compute_capability: str | None) -> AnalyticCounts:
    """The op's exact counts plus the tile and split-K models for this variant."""
    from kernels.registry import get_op

    spec = get_op(op)
    shape = spec.parse_shape(shape_text)
    tdt = torch_dtype(dtype)
    flops = int(spec.flops(shape))
    min_bytes = int(spec.min_bytes(shape, tdt))
    out = int(spec.output_bytes(shape, tdt))
    computed, note = spec.tiles.computed_flops(variant, shape, tile, compute_capability)
    extra, extra_note = spec.tiles.extra_bytes(variant, shape, tile)
    sheet = datasheet_for(device_name) if device_name else None
    roofline, roof_note = None, "no datasheet entry for this GPU" if device_name else "GPU unknown"
    if sheet is not None:
        peak = sheet.peak_flop_s(dtype)
        if peak:
            roofline = max(flops / peak, min_bytes / sheet.memory_bandwidth_bytes_s)
            roof_note = f"max(FLOPs / {peak / 1e12:.0f} TFLOP/s, bytes / {sheet.memory_bandwidth_bytes_s / 1e12:.2f} TB/s), {sheet.model} datasheet"
        else:
            roof_note = f"{sheet.model} datasheet has no {dtype} peak"
    return AnalyticCounts(flops=flops, min_bytes=min_bytes, output_bytes=out, min_read_bytes=min_bytes - out,
                          computed_flops=computed, computed_flops_note=note,
                          extra_read_bytes=extra, extra_write_bytes=extra, extra_bytes_note=extra_note,
                          roofline_time_s=roofline, roofline_note=roof_note)
