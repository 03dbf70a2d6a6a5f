"""Hardware counters beside the analytic counts: one kernel call under Nsight Compute.

    result = measure_counters("decode", "triton-splitk", "b=16,h=32,kv=8,ctx=8192,d=128", "bf16")

runs `python -m kernelprof.estimates.counters.target` under ncu (kernelprof.estimates.counters.ncu): the target warms the
variant up (compile, autotune) outside an NVTX range and makes exactly one call inside it, so ncu
profiles only the kernels of that call (a split-K decode: its chunk and merge kernels). Counters
are summed over those kernels and compared with the op's exact counts:

- tensor-core FLOPs (ncu's `sm__ops_path_tensor_src_<dtype>` count 2 per multiply-add: the captured
  cuBLAS 4096^3 bf16 GEMM read exactly 2*4096^3) against the exact FLOPs, and against what the
  kernel's tiles compute when that is known (masked causal tiles, GQA rows padded to 16);
- FMA-pipe FLOPs (2 per FFMA/HFMA/DFMA thread instruction, 1 per ADD/MUL), the softmax and
  epilogue work the analytic count leaves out;
- DRAM bytes read against the minimum (every input once) and written against the output;
- L2 traffic, achieved occupancy, SM and memory throughput, duration: shown, not judged.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelprof import errors as _errors
from kernelprof.estimates.counters import ncu as _ncu
from kernelprof.errors import KernelprofError, UsageError
from kernelprof.estimates.datasheets import datasheet_for, normalize_dtype

# ---------------------------------------------------------------------------------------------
# Metrics

# Tensor-pipe math ops by source dtype. Each is 2 per multiply-add (verified for bf16 on H100:
# exactly 2MNK for a cuBLAS GEMM; assumed for the other sources, which ncu describes the same way).
TENSOR_FLOP_METRICS: dict[str, str] = {
    "bf16": "sm__ops_path_tensor_src_bf16_dst_fp32.sum",
    "fp16": "sm__ops_path_tensor_src_fp16.sum",
    "tf32": "sm__ops_path_tensor_src_tf32_dst_fp32.sum",
    "fp8": "sm__ops_path_tensor_src_fp8.sum",
    "fp64": "sm__ops_path_tensor_src_fp64.sum",
}
# Which instruction path did it: warpgroup MMA (wgmma, Hopper) or warp MMA (mma.sync).
TENSOR_PATH_METRICS: dict[str, str] = {
    "bf16 wgmma": "sm__ops_path_tensor_op_hgmma_src_bf16_dst_fp32.sum",
    "bf16 mma.sync": "sm__ops_path_tensor_op_hmma_src_bf16_dst_fp32.sum",
    "fp16 wgmma": "sm__ops_path_tensor_op_hgmma_src_fp16.sum",
    "fp16 mma.sync": "sm__ops_path_tensor_op_hmma_src_fp16.sum",
}
# FMA-pipe FLOPs per thread instruction, as ncu's roofline counts them: FMA = 2, ADD = MUL = 1.
# A packed half2 instruction (HFMA2) counts once here although it does two lanes' work.
_SASS = "smsp__sass_thread_inst_executed_op_{}_pred_on.sum"
FMA_FLOP_METRICS: dict[str, dict[str, int]] = {
    "fp32": {_SASS.format("ffma"): 2, _SASS.format("fadd"): 1, _SASS.format("fmul"): 1},
    "fp16": {_SASS.format("hfma"): 2, _SASS.format("hadd"): 1, _SASS.format("hmul"): 1},
    "fp64": {_SASS.format("dfma"): 2, _SASS.format("dadd"): 1, _SASS.format("dmul"): 1},
}
DURATION = "gpu__time_duration.sum"
DRAM_READ = "dram__bytes_read.sum"
DRAM_WRITE = "dram__bytes_write.sum"
L2_BYTES = "lts__t_bytes.sum"
# Rollups of ncu's own sections (Occupancy, SpeedOfLight); not in the H100 probe capture, so a
# run that ncu refuses with them is retried with the core list (see measure_counters).
OCCUPANCY = "sm__warps_active.avg.pct_of_peak_sustained_active"
SM_THROUGHPUT = "sm__throughput.avg.pct_of_peak_sustained_elapsed"
MEMORY_THROUGHPUT = "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"
DRAM_THROUGHPUT = "dram__throughput.avg.pct_of_peak_sustained_elapsed"
SM_CLOCK = "gpc__cycles_elapsed.avg.per_second"

CORE_METRICS: list[str] = ([DURATION, DRAM_READ, DRAM_WRITE, L2_BYTES]
                           + list(TENSOR_FLOP_METRICS.values()) + list(TENSOR_PATH_METRICS.values())
                           + [m for group in FMA_FLOP_METRICS.values() for m in group])
OPTIONAL_METRICS: list[str] = [OCCUPANCY, SM_THROUGHPUT, MEMORY_THROUGHPUT, DRAM_THROUGHPUT, SM_CLOCK]
_PERCENT_METRICS = (OCCUPANCY, SM_THROUGHPUT, MEMORY_THROUGHPUT, DRAM_THROUGHPUT)
_KEEP_LAUNCH = ("launch__registers_per_thread", "launch__grid_size", "launch__block_size",
                "launch__waves_per_multiprocessor", "launch__occupancy_limit_registers",
                "launch__occupancy_limit_shared_mem", "profiler__replayer_passes")

# Tolerances, each with its reason (shown beside every verdict).
FLOP_TOLERANCE = 0.01
FLOP_TOLERANCE_WHY = ("tensor-pipe counters count every executed MMA exactly (a cuBLAS 4096^3 GEMM read exactly "
                      "2MNK), so more than 1% off is work really done or skipped, not noise")
READ_TOLERANCE = 0.05
READ_TOLERANCE_WHY = ("ncu flushed L2 before the kernel, so each input byte comes from DRAM at least once; 5% "
                      "covers 32-byte sector granularity and small side reads (lengths, scales, descriptors)")
READ_TOLERANCE_WHY_WARM = ("L2 was not flushed (--cache-control none): inputs left in L2 by the warm-up may not "
                           "reach DRAM; 5% as with a flushed cache")
WRITE_TOLERANCE = 0.05
WRITE_TOLERANCE_WHY = ("the output reaches DRAM once, but L2 writes back lazily and ncu counts only write-backs "
                       "made before the kernel ends; 5% covers sector granularity")

# FlashAttention-2's forward tile (BLOCK_M, BLOCK_N) by head_dim, for torch's sdpa-flash on sm80 and
# sm90 without dropout (flash_fwd_launch_template.h, run_mha_fwd_hdim*). Only BLOCK_M matters for the
# causal count when BLOCK_N divides it.
FA2_FWD_TILES: dict[int, tuple[int, int]] = {32: (128, 128), 64: (128, 128), 128: (128, 64)}
_FA2_CCS = ("8.0", "9.0")


# ---------------------------------------------------------------------------------------------
# Results

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


@dataclass(frozen=True)
class Comparison:
    """One measured quantity beside its analytic value, with a verdict and why."""

    quantity: str
    unit: str
    measured: float | None
    analytic: float | None
    ratio: float | None              # measured / analytic
    tolerance: float | None          # relative; None for informational rows
    tolerance_why: str
    status: str                      # agrees | explained | above | below | other-pipe | info | missing
    explanation: str
    expected: float | None = None    # the padded / with-known-extras figure, when there is one


@dataclass(frozen=True)
class CountersResult:
    """One `kernelprof counters` measurement."""

    op: str
    variant: str
    shape: str
    dtype: str
    device_name: str | None
    compute_capability: str | None
    kernels: list[_ncu.NcuKernel]
    totals: CounterTotals
    analytic: AnalyticCounts
    comparisons: list[Comparison]
    tile_config: dict[str, Any]
    cache_control: str
    ncu_version: str
    ncu_command: list[str]
    metrics: list[str]
    metrics_missing: list[str]
    notes: list[str] = field(default_factory=list)
    ncu_wall_s: float | None = None
    method: str = "nsight_compute"


# ---------------------------------------------------------------------------------------------
# Counters -> totals

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


# ---------------------------------------------------------------------------------------------
# What the kernel's tiles compute

def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def causal_computed_pairs(seq_len: int, block_m: int, block_n: int) -> int:
    """(query, key) pairs a tiled causal kernel computes per head: each query block of block_m rows
    (padded rows included) computes every key block up to the one holding its last row's diagonal,
    masked tiles included. For seq_len a multiple of block_m and block_n dividing block_m this is
    T(T+1)/2 * block_m^2 with T = seq_len / block_m (exact: seq_len(seq_len+1)/2)."""
    pairs = 0
    for m in range(_cdiv(seq_len, block_m)):
        last_key = min((m + 1) * block_m, seq_len)
        pairs += block_m * _cdiv(last_key, block_n) * block_n
    return pairs


def full_computed_pairs(q_len: int, kv_len: int, block_m: int, block_n: int) -> int:
    """Pairs a tiled non-causal kernel computes: rows and keys padded up to whole tiles."""
    return _cdiv(q_len, block_m) * block_m * _cdiv(kv_len, block_n) * block_n


def decode_computed_keys(lengths: list[int], chunk: int, num_splits: int, block_n: int) -> int:
    """Cache positions a split-K decode program walks, summed over sequences: each chunk
    [s*chunk, min((s+1)*chunk, length)) in whole blocks of block_n (the last block masked)."""
    keys = 0
    for length in lengths:
        for s in range(num_splits):
            start, end = s * chunk, min((s + 1) * chunk, length)
            if end > start:
                keys += _cdiv(end - start, block_n) * block_n
    return keys


def _int(cfg: dict[str, Any], key: str) -> int | None:
    v = cfg.get(key)
    return int(v) if isinstance(v, (int, float)) and v > 0 else None


def computed_flops(op: str, variant: str, shape: Any, tile: dict[str, Any],
                   compute_capability: str | None) -> tuple[int | None, str]:
    """FLOPs of the tiles this variant computes, and a sentence saying where they come from."""
    if op == "gemm":
        bm, bn, bk = _int(tile, "BLOCK_M"), _int(tile, "BLOCK_N"), _int(tile, "BLOCK_K")
        if bm and bn and bk:
            flops = 2 * _cdiv(shape.m, bm) * bm * _cdiv(shape.n, bn) * bn * _cdiv(shape.k, bk) * bk
            pad = "" if flops == 2 * shape.m * shape.n * shape.k else ": edge tiles padded to whole tiles"
            return flops, f"tiles {bm}x{bn}x{bk}{pad}"
        if all(x % 256 == 0 for x in (shape.m, shape.n, shape.k)):
            return 2 * shape.m * shape.n * shape.k, "M, N, K are multiples of 256: no tile padding for any usual tile"
        return None, "tile unknown (library kernel) and the shape is not a multiple of 256"
    if op == "attention":
        s, d, bh = shape.seq_len, shape.head_dim, shape.batch * shape.q_heads
        bm, bn, source = _int(tile, "BLOCK_M"), _int(tile, "BLOCK_N"), "Triton autotuner"
        if variant == "sdpa-flash" and compute_capability in _FA2_CCS and d in FA2_FWD_TILES:
            (bm, bn), source = FA2_FWD_TILES[d], "FlashAttention-2's forward tile for this head_dim"
        if variant in ("eager", "sdpa-math"):
            return (4 * bh * d * s * s,
                    "computes every score of the S x S matrix and masks the upper half after" if shape.causal
                    else "computes the full S x S score matrix")
        if not (bm and bn):
            return None, "tile unknown for this variant"
        if shape.causal:
            pairs = causal_computed_pairs(s, bm, bn)
            exact = s * (s + 1) // 2
            return (4 * bh * d * pairs,
                    f"masked causal tiles computed then discarded: BLOCK_M={bm}, BLOCK_N={bn} ({source}) compute "
                    f"{pairs:,} pairs per head vs {exact:,} kept (x{pairs / exact:.4f})")
        pairs = full_computed_pairs(s, s, bm, bn)
        return 4 * bh * d * pairs, f"BLOCK_M={bm}, BLOCK_N={bn} ({source}); rows/keys padded to whole tiles"
    if op == "decode":
        if variant not in ("triton-splitk", "triton-nosplit"):
            return None, "tile unknown for this variant"
        bn, bg = _int(tile, "BLOCK_N"), _int(tile, "BLOCK_G")
        chunk, splits = _int(tile, "chunk"), _int(tile, "num_splits")
        if not (bn and bg and chunk and splits):
            return None, "the target did not report the decode tile"
        from kernels.registry import decode_lengths

        group = shape.q_heads // shape.kv_heads
        keys = decode_computed_keys(decode_lengths(shape), chunk, splits, bn)
        flops = 4 * shape.head_dim * bg * shape.kv_heads * keys
        note = (f"GQA rows padded for tl.dot: each KV head's group of {group} query heads fills {bg} MMA rows "
                f"(x{bg / group:.2f})")
        valid = sum(decode_lengths(shape))
        if keys != valid:
            note += f"; cache positions padded to BLOCK_N={bn} per chunk (x{keys / valid:.4f})"
        return flops, note
    return None, "no tile model for this op"


def output_bytes(op: str, shape: Any, element_size: int, is_fp8: bool) -> int:
    """Bytes of the op's output, written once (fp8 GEMMs write bf16)."""
    if op == "gemm":
        return shape.m * shape.n * (2 if is_fp8 else element_size)
    if op == "attention":
        return shape.batch * shape.q_heads * shape.seq_len * shape.head_dim * element_size
    if op == "decode":
        return shape.batch * shape.q_heads * shape.head_dim * element_size
    raise UsageError(f"no output size for op {op!r}")


def split_k_bytes(op: str, variant: str, shape: Any, tile: dict[str, Any]) -> tuple[int, str]:
    """Bytes of the split-K partials (fp32 o_part and lse), written by the chunk kernel and read by
    the merge kernel: once each way beyond the minimum."""
    splits = _int(tile, "num_splits")
    if op == "decode" and variant == "triton-splitk" and splits and splits > 1:
        n = shape.batch * shape.q_heads * splits * (shape.head_dim + 1) * 4
        return n, f"split-K partials: {splits} chunks x (o_part fp32 + lse) = {n / 1e6:.2f} MB written, then read by the merge"
    return 0, ""


def analytic_counts(op: str, variant: str, shape_text: str, dtype: str, tile: dict[str, Any],
                    device_name: str | None, compute_capability: str | None) -> AnalyticCounts:
    """The op's exact counts plus the tile and split-K models for this variant."""
    import torch

    from kernels.registry import get_op

    spec = get_op(op)
    shape = spec.parse_shape(shape_text)
    tdt = torch_dtype(dtype)
    flops = int(spec.flops(shape))
    min_bytes = int(spec.min_bytes(shape, tdt))
    is_fp8 = normalize_dtype(dtype) == "fp8"
    out = output_bytes(op, shape, torch.empty((), dtype=tdt).element_size(), is_fp8)
    computed, note = computed_flops(op, variant, shape, tile, compute_capability)
    extra, extra_note = split_k_bytes(op, variant, shape, tile)
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


# ---------------------------------------------------------------------------------------------
# Verdicts

def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _within(ratio: float | None, tol: float) -> bool:
    return ratio is not None and abs(ratio - 1.0) <= tol


def compare_flops(t: CounterTotals, a: AnalyticCounts, dtype: str) -> Comparison:
    measured, r = t.tensor_flops, _ratio(t.tensor_flops, a.flops)
    base = dict(quantity="FLOPs (tensor cores)", unit="FLOP", measured=measured, analytic=float(a.flops), ratio=r,
                tolerance=FLOP_TOLERANCE, tolerance_why=FLOP_TOLERANCE_WHY,
                expected=None if a.computed_flops is None else float(a.computed_flops))
    if measured is None:
        return Comparison(**base, status="missing", explanation="ncu returned no tensor-pipe counters")
    if measured < 0.01 * a.flops and (t.fma_flops or 0) >= 0.5 * a.flops:
        return Comparison(**base, status="other-pipe", explanation=(
            f"the math ran on the FMA pipes (CUDA cores), not on tensor cores: FMA-pipe FLOPs are "
            f"{t.fma_flops / a.flops:.3f} x the exact count"))
    dtypes = {d for d, v in t.tensor_flops_by_dtype.items() if v}
    key = normalize_dtype(dtype)
    other = f"; tensor work counted under {', '.join(sorted(dtypes))}, not {key}" if dtypes and key not in dtypes else ""
    if _within(r, FLOP_TOLERANCE):
        return Comparison(**base, status="agrees", explanation=f"matches the exact count (x{r:.4f}){other}")
    exp_r = _ratio(a.computed_flops, a.flops)
    if a.computed_flops is not None and _within(_ratio(measured, a.computed_flops), FLOP_TOLERANCE):
        return Comparison(**base, status="explained", explanation=(
            f"x{r:.4f} the exact count, as the kernel's tiles predict (x{exp_r:.4f}): {a.computed_flops_note}{other}"))
    if r is not None and r > 1:
        why = (f"the tile model ({a.computed_flops_note}) predicts x{exp_r:.4f}, so the kernel's tiles differ from it"
               if a.computed_flops is not None else
               f"tile padding ({a.computed_flops_note}): masked tiles computed then discarded, query rows padded "
               "to the MMA tile, or a different algorithm")
        return Comparison(**base, status="above", explanation=f"x{r:.4f} the exact count; {why}{other}")
    return Comparison(**base, status="below", explanation=(
        f"x{r:.4f} the exact count: the kernel skipped work the count includes, or did part of it on the FMA "
        f"pipes ({t.fma_flops or 0:.3g} FMA-pipe FLOPs){other}"))


def compare_fma(t: CounterTotals, a: AnalyticCounts) -> Comparison:
    return Comparison(
        quantity="FLOPs (FMA pipes)", unit="FLOP", measured=t.fma_flops, analytic=float(a.flops),
        ratio=_ratio(t.fma_flops, a.flops), tolerance=None, tolerance_why="",
        status="info" if t.fma_flops is not None else "missing",
        explanation="non-tensor math (softmax exponentials and rescaling, scaling, epilogues, merges); the "
                    "analytic count leaves it out. Packed half2 instructions count once")


def _reread_cause(op: str, shape: Any, tile: dict[str, Any], ratio: float) -> str:
    if op == "gemm":
        return ("re-reads that miss L2: every tile row re-reads its A panel and every tile column its B panel; "
                "L2 serves part of those re-reads, the misses come from DRAM again")
    if op == "attention":
        bm = _int(tile, "BLOCK_M")
        blocks = f"{_cdiv(shape.seq_len, bm)} " if bm else ""
        return (f"re-reads that miss L2: K and V of a head are read by each of its {blocks}query blocks; L2 "
                "serves most of them, the misses come from DRAM again")
    group = shape.q_heads // shape.kv_heads
    if op == "decode" and group > 1 and abs(ratio - group) < 0.25 * group:
        return (f"K/V read once per query head instead of once per KV head (x{group} for GQA group {group}): "
                "the kernel expands the cache or runs one program per query head")
    return "re-reads that miss L2 (cache lines fetched by more than one program)"


def compare_reads(t: CounterTotals, a: AnalyticCounts, op: str, shape: Any, tile: dict[str, Any],
                  cache_control: str) -> Comparison:
    measured, r = t.dram_read_bytes, _ratio(t.dram_read_bytes, a.min_read_bytes)
    why = READ_TOLERANCE_WHY if cache_control == "all" else READ_TOLERANCE_WHY_WARM
    expected = a.min_read_bytes + a.extra_read_bytes if a.extra_read_bytes else None
    base = dict(quantity="DRAM bytes read", unit="B", measured=measured, analytic=float(a.min_read_bytes), ratio=r,
                tolerance=READ_TOLERANCE, tolerance_why=why, expected=None if expected is None else float(expected))
    if measured is None:
        return Comparison(**base, status="missing", explanation="ncu returned no dram__bytes_read")
    extra = (f"; includes {a.extra_bytes_note} ({a.extra_read_bytes / a.min_read_bytes:.2%} of the minimum)"
             if a.extra_read_bytes else "")
    if _within(r, READ_TOLERANCE):
        return Comparison(**base, status="agrees", explanation=f"each input read about once (x{r:.4f}){extra}")
    if r is not None and r > 1:
        if expected is not None and _within(_ratio(measured, expected), READ_TOLERANCE):
            return Comparison(**base, status="explained", explanation=(
                f"x{r:.4f} the minimum: the excess is the {a.extra_bytes_note}"))
        excess = measured - a.min_read_bytes
        scratch = (f"; the call launched {t.kernel_count} kernels, and scratch one writes and the next reads "
                   "(split-K partials, workspaces) counts as reads, since ncu flushes L2 between them"
                   if t.kernel_count > 1 and not a.extra_read_bytes else "")
        return Comparison(**base, status="above", explanation=(
            f"x{r:.4f} the minimum ({excess / 1e6:.1f} MB more): {_reread_cause(op, shape, tile, r)}{extra}{scratch}"))
    if cache_control == "none":
        cause = "inputs served from L2 left warm by the warm-up (--cache-control none)"
    else:
        cause = ("fewer bytes than the inputs although L2 was flushed: the kernel did not read all its inputs, "
                 "or the memory system compressed them")
    return Comparison(**base, status="below", explanation=f"x{r:.4f} the minimum: {cause}")


def compare_writes(t: CounterTotals, a: AnalyticCounts) -> Comparison:
    measured, r = t.dram_write_bytes, _ratio(t.dram_write_bytes, a.output_bytes)
    expected = a.output_bytes + a.extra_write_bytes if a.extra_write_bytes else None
    base = dict(quantity="DRAM bytes written", unit="B", measured=measured, analytic=float(a.output_bytes), ratio=r,
                tolerance=WRITE_TOLERANCE, tolerance_why=WRITE_TOLERANCE_WHY,
                expected=None if expected is None else float(expected))
    if measured is None:
        return Comparison(**base, status="missing", explanation="ncu returned no dram__bytes_write")
    if _within(r, WRITE_TOLERANCE):
        return Comparison(**base, status="agrees", explanation=f"the output written about once (x{r:.4f})")
    if r is not None and r < 1:
        return Comparison(**base, status="below", explanation=(
            f"x{r:.4f} the output: {(a.output_bytes - measured) / 1e6:.1f} MB of it were still in L2 when the "
            "kernel ended (L2 hits on write; written back to DRAM later, outside the kernel's count)"))
    if expected is not None and (_within(_ratio(measured, expected), WRITE_TOLERANCE) or measured <= expected):
        return Comparison(**base, status="explained", explanation=(
            f"x{r:.4f} the output: the excess is the {a.extra_bytes_note}"))
    return Comparison(**base, status="above", explanation=(
        f"x{r:.4f} the output: scratch written besides the output (split-K partials, workspace, register spills)"))


def compare_info(t: CounterTotals, a: AnalyticCounts) -> list[Comparison]:
    rows = [
        Comparison("L2 traffic (lts__t_bytes)", "B", t.l2_bytes, float(a.min_bytes), _ratio(t.l2_bytes, a.min_bytes),
                   None, "", "info" if t.l2_bytes is not None else "missing",
                   "bytes requested from L2 by the SMs; above the minimum bytes by the reuse that tiles get from L2 "
                   "instead of DRAM"),
        Comparison("duration", "s", t.duration_s, a.roofline_time_s, _ratio(t.duration_s, a.roofline_time_s), None, "",
                   "info" if t.duration_s is not None else "missing",
                   f"ncu's gpu__time_duration summed over kernels, caches flushed, clocks unmanaged; analytic: "
                   f"roofline minimum, {a.roofline_note}"),
    ]
    for name, value, what in (
            ("achieved occupancy", t.achieved_occupancy_pct, "warps in flight / the SM's maximum, while active"),
            ("SM throughput", t.sm_throughput_pct, "busiest SM pipe or unit, % of its peak over the kernel"),
            ("memory throughput", t.memory_throughput_pct, "busiest memory unit (L1, L2, DRAM), % of its peak"),
            ("DRAM throughput", t.dram_throughput_pct, "DRAM bandwidth used, % of peak")):
        rows.append(Comparison(name, "%", value, None, None, None, "", "info" if value is not None else "missing",
                               what + (" (duration-weighted over kernels)" if t.kernel_count > 1 else "")))
    return rows


def build_result(op: str, variant: str, shape: str, dtype: str, kernels: list[_ncu.NcuKernel], *,
                 tile_config: dict[str, Any] | None = None, device_name: str | None = None,
                 compute_capability: str | None = None, cache_control: str = "all", ncu_version: str = "unknown",
                 ncu_command: list[str] | None = None, metrics: list[str] | None = None,
                 notes: list[str] | None = None, ncu_wall_s: float | None = None) -> CountersResult:
    """Totals, analytic counts and verdicts from parsed ncu kernels (no GPU needed)."""
    from kernels.registry import get_op

    tile = dict(tile_config or {})
    spec = get_op(op)
    shape_obj = spec.parse_shape(shape)
    metrics = list(metrics if metrics is not None else CORE_METRICS + OPTIONAL_METRICS)
    totals = totals_from_kernels(kernels)
    a = analytic_counts(op, variant, shape, dtype, tile, device_name, compute_capability)
    notes = list(notes or [])
    if op == "decode" and variant == "triton-splitk" and _int(tile, "num_splits"):
        grids = [k.grid for k in kernels if "chunk" in k.name]
        want = f", {tile['num_splits']}, "
        if grids and want not in grids[0]:
            notes.append(f"the chunk kernel's grid {grids[0]} does not show num_splits={tile['num_splits']} that the "
                         "target computed; the split-K byte model may be off")
    for dtype_key in ("bf16", "fp16"):
        agg = _sum(kernels, TENSOR_FLOP_METRICS[dtype_key])
        paths = _path_sum(totals.tensor_flops_by_path, dtype_key)
        if paths is not None and (agg is None or paths > agg * 1.0001):
            notes.append(f"{TENSOR_FLOP_METRICS[dtype_key]} ({agg}) counted less than its wgmma + mma.sync paths "
                         f"({paths:.6g}); the path sum is used")
    comparisons = [compare_flops(totals, a, dtype), compare_fma(totals, a),
                   compare_reads(totals, a, op, shape_obj, tile, cache_control), compare_writes(totals, a),
                   *compare_info(totals, a)]
    missing = sorted({m for m in metrics if all(k.values.get(m) is None for k in kernels)})
    keep = set(metrics) | set(_KEEP_LAUNCH)
    slim = [_ncu.NcuKernel(k.id, k.name, k.grid, k.block, {m: v for m, v in k.values.items() if m in keep},
                           {m: u for m, u in k.units.items() if m in keep}, k.nvtx) for k in kernels]
    return CountersResult(op=op, variant=variant, shape=str(shape_obj), dtype=normalize_dtype(dtype),
                          device_name=device_name, compute_capability=compute_capability, kernels=slim,
                          totals=totals, analytic=a, comparisons=comparisons, tile_config=tile,
                          cache_control=cache_control, ncu_version=ncu_version, ncu_command=list(ncu_command or []),
                          metrics=metrics, metrics_missing=missing, notes=notes, ncu_wall_s=ncu_wall_s)


# ---------------------------------------------------------------------------------------------
# Running

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


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def target_command(op: str, variant: str, shape: str, dtype: str, info_out: Path, *, seed: int = 0) -> list[str]:
    return [sys.executable, "-m", "kernelprof.estimates.counters.target", "--op", op, "--variant", variant, "--shape", shape,
            "--dtype", dtype, "--seed", str(seed), "--info-out", str(info_out)]


def _raise_target_error(info: dict[str, Any]) -> None:
    cls = getattr(_errors, str(info.get("error_type")), None)
    if not (isinstance(cls, type) and issubclass(cls, KernelprofError)):
        cls = KernelprofError
    raise cls(f"the profiled target failed: {info.get('error', 'no message')}")


def measure_counters(op: str, variant: str | None = None, shape: str | None = None, dtype: str = "bf16", *,
                     ncu: str | None = None, cache_control: str = "all", timeout_s: float = 600.0, seed: int = 0,
                     raw_output_path: str | Path | None = None) -> CountersResult:
    """Profile one call of `op`/`variant` at `shape` under ncu and compare its counters with the counts.

    Raises NcuNotFoundError (no ncu), NcuPermissionError (ERR_NVGPUCTRPERM), NoKernelsProfiledError,
    the registry's ShapeError for bad names, or the target's own error (e.g. NotSupportedError)."""
    spec, shape_obj, variant, _ = resolve_kernel(op, variant, shape, dtype)
    if cache_control not in ("all", "none"):
        raise UsageError(f"cache_control must be 'all' or 'none', got {cache_control!r}")
    ncu_path = _ncu.find_ncu(ncu)
    from kernelprof.gpu.devices import require_gpu

    require_gpu("kernelprof counters")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_repo_root())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kernelprof-counters-") as tmp:
        info_path = Path(tmp) / "target.json"
        target = target_command(op, variant, str(shape_obj), dtype, info_path, seed=seed)

        def attempt(metrics: list[str]) -> _ncu.NcuRun:
            info_path.unlink(missing_ok=True)
            command = _ncu.build_command(ncu_path, metrics, target, cache_control=cache_control)

            def check_target() -> None:
                if info_path.is_file():
                    info = json.loads(info_path.read_text())
                    if not info.get("ok"):
                        _raise_target_error(info)

            return _ncu.run_ncu(command, env=env, timeout_s=timeout_s, precheck=check_target)

        metrics = CORE_METRICS + OPTIONAL_METRICS
        try:
            run = attempt(metrics)
        except (_ncu.NcuNotFoundError, _ncu.NcuPermissionError, _ncu.NoKernelsProfiledError):
            raise
        except _ncu.NcuError as exc:
            # The optional rollups are the only names not seen working on H100: retry without them.
            notes.append(f"ncu refused the optional metrics ({exc}); retried with the core list")
            metrics = list(CORE_METRICS)
            run = attempt(metrics)
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    # Clocks are deliberately unmanaged: ncu's warning about it is expected, not news.
    notes += [f"ncu said: {m}" for m in run.messages if "unmodified GPU clocks" not in m]
    if raw_output_path is not None:
        Path(raw_output_path).parent.mkdir(parents=True, exist_ok=True)
        Path(raw_output_path).write_text(run.output)
    return build_result(op, variant, str(shape_obj), dtype, run.kernels, tile_config=info.get("tile_config"),
                        device_name=info.get("device_name"), compute_capability=info.get("compute_capability"),
                        cache_control=cache_control, ncu_version=_ncu.ncu_version(ncu_path), ncu_command=run.command,
                        metrics=metrics, notes=notes + list(info.get("notes", [])), ncu_wall_s=run.wall_s)


def result_to_json(result: CountersResult) -> dict[str, Any]:
    from kernelprof.outputs.runfile import to_jsonable

    return to_jsonable(result)


def verdict_summary(result: CountersResult | dict[str, Any]) -> dict[str, str]:
    """quantity -> status, for tests and scripts."""
    rows = result["comparisons"] if isinstance(result, dict) else [c.__dict__ for c in result.comparisons]
    return {c["quantity"]: c["status"] for c in rows}
