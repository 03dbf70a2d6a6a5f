"""ncu's per-kernel counters summed over every kernel of one call (`CounterTotals`)."""
from __future__ import annotations

from dataclasses import dataclass

from kernelprof.estimates.counters import ncu as _ncu
from kernelprof.estimates.counters.metrics import (DRAM_READ, DRAM_THROUGHPUT, DRAM_WRITE, DURATION, FMA_FLOP_METRICS,
                                                   L2_BYTES, MEMORY_THROUGHPUT, OCCUPANCY, SM_CLOCK, SM_THROUGHPUT,
                                                   TENSOR_FLOP_METRICS, TENSOR_PATH_METRICS)


@dataclass(frozen=True)
class CounterTotals:
    """Counters summed over every kernel of the call (percentages: duration-weighted means)."""

    kernel_count: int
    duration_s: float | None
    tensor_flops: float | None                    # all source dtypes
    tensor_flops_by_dtype: dict[str, float | None]
    tensor_flops_by_path: dict[str, float | None]
    fma_flops: float | None                       # FMA pipes, all precisions
    fma_flops_by_precision: dict[str, float | None]
    dram_read_bytes: float | None
    dram_write_bytes: float | None
    l2_bytes: float | None
    achieved_occupancy_pct: float | None
    sm_throughput_pct: float | None
    memory_throughput_pct: float | None
    dram_throughput_pct: float | None
    sm_clock_hz: float | None


def _sum(kernels: list[_ncu.NcuKernel], metric: str) -> float | None:
    vals = [k.value(metric) for k in kernels]
    if all(v is None for v in vals):
        return None
    return float(sum(v for v in vals if v is not None))


def _weighted_mean(kernels: list[_ncu.NcuKernel], metric: str) -> float | None:
    """Duration-weighted mean (a percentage of a 5 us merge kernel should not weigh like a 1 ms one)."""
    pairs = [(k.value(metric), k.value(DURATION)) for k in kernels]
    pairs = [(v, d if d else 0.0) for v, d in pairs if v is not None]
    if not pairs:
        return None
    total = sum(d for _, d in pairs)
    if total <= 0:
        return sum(v for v, _ in pairs) / len(pairs)
    return sum(v * d for v, d in pairs) / total


def fma_flops(kernels: list[_ncu.NcuKernel], precision: str) -> float | None:
    """FMA-pipe FLOPs of one precision: 2 x FMA + ADD + MUL thread instructions."""
    parts = [(_sum(kernels, m), w) for m, w in FMA_FLOP_METRICS[precision].items()]
    if all(v is None for v, _ in parts):
        return None
    return float(sum(w * v for v, w in parts if v is not None))


def _path_sum(by_path: dict[str, float | None], dtype: str) -> float | None:
    vals = [v for p, v in by_path.items() if p.startswith(dtype + " ") and v is not None]
    return float(sum(vals)) if vals else None


def totals_from_kernels(kernels: list[_ncu.NcuKernel]) -> CounterTotals:
    by_dtype = {d: _sum(kernels, m) for d, m in TENSOR_FLOP_METRICS.items()}
    by_path = {p: _sum(kernels, m) for p, m in TENSOR_PATH_METRICS.items()}
    # The per-source counter covered the wgmma path in the H100 capture; should it miss mma.sync
    # ops (not yet seen on this ncu), the per-path sum is the larger and the right one.
    for dtype in ("bf16", "fp16"):
        paths = _path_sum(by_path, dtype)
        if paths is not None and (by_dtype[dtype] is None or paths > by_dtype[dtype]):
            by_dtype[dtype] = paths
    by_prec = {p: fma_flops(kernels, p) for p in FMA_FLOP_METRICS}

    def total(d: dict[str, float | None]) -> float | None:
        return None if all(v is None for v in d.values()) else float(sum(v for v in d.values() if v is not None))

    return CounterTotals(
        kernel_count=len(kernels), duration_s=_sum(kernels, DURATION),
        tensor_flops=total(by_dtype), tensor_flops_by_dtype=by_dtype, tensor_flops_by_path=by_path,
        fma_flops=total(by_prec), fma_flops_by_precision=by_prec,
        dram_read_bytes=_sum(kernels, DRAM_READ), dram_write_bytes=_sum(kernels, DRAM_WRITE),
        l2_bytes=_sum(kernels, L2_BYTES),
        achieved_occupancy_pct=_weighted_mean(kernels, OCCUPANCY),
        sm_throughput_pct=_weighted_mean(kernels, SM_THROUGHPUT),
        memory_throughput_pct=_weighted_mean(kernels, MEMORY_THROUGHPUT),
        dram_throughput_pct=_weighted_mean(kernels, DRAM_THROUGHPUT),
        sm_clock_hz=_weighted_mean(kernels, SM_CLOCK),
    )
