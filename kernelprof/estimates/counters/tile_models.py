"""What a kernel's tiles compute and move beyond the op's exact counts (`AnalyticCounts`):
masked causal tiles, GQA rows padded to the MMA tile, split-K partials.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernelprof.errors import UsageError
from kernelprof.estimates.counters.metrics import _FA2_CCS, FA2_FWD_TILES
from kernelprof.estimates.datasheets import datasheet_for, normalize_dtype
from kernelprof.methods.ops import torch_dtype


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
