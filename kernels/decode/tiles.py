"""What the decode kernels' tiles compute and move beyond the exact counts (GQA rows padded to the
MMA tile, cache positions padded to whole blocks, split-K partials), the config each Triton variant
launched with, and why K/V may be read more than once."""
from __future__ import annotations

from typing import Any

from kernels.decode.counts import decode_lengths
from kernels.op_spec import Launches, TileModel, cdiv, tile_int

_TRITON = ("triton-splitk", "triton-nosplit")


def decode_computed_keys(lengths: list[int], chunk: int, num_splits: int, block_n: int) -> int:
    """Cache positions a split-K decode program walks, summed over sequences: each chunk
    [s*chunk, min((s+1)*chunk, length)) in whole blocks of block_n (the last block masked)."""
    keys = 0
    for length in lengths:
        for s in range(num_splits):
            start, end = s * chunk, min((s + 1) * chunk, length)
            if end > start:
                keys += cdiv(end - start, block_n) * block_n
    return keys


def computed_flops(variant: str, shape: Any, tile: dict[str, Any],
                   compute_capability: str | None) -> tuple[int | None, str]:
    """4 * head_dim FLOPs per (MMA row, walked cache position), per KV head."""
    if variant not in _TRITON:
        return None, "tile unknown for this variant"
    bn, bg = tile_int(tile, "BLOCK_N"), tile_int(tile, "BLOCK_G")
    chunk, splits = tile_int(tile, "chunk"), tile_int(tile, "num_splits")
    if not (bn and bg and chunk and splits):
        return None, "the target did not report the decode tile"
    group = shape.q_heads // shape.kv_heads
    keys = decode_computed_keys(decode_lengths(shape), chunk, splits, bn)
    flops = 4 * shape.head_dim * bg * shape.kv_heads * keys
    note = (f"GQA rows padded for tl.dot: each KV head's group of {group} query heads fills {bg} MMA rows "
            f"(x{bg / group:.2f})")
    valid = sum(decode_lengths(shape))
    if keys != valid:
        note += f"; cache positions padded to BLOCK_N={bn} per chunk (x{keys / valid:.4f})"
    return flops, note


def extra_bytes(variant: str, shape: Any, tile: dict[str, Any]) -> tuple[int, str]:
    """Bytes of the split-K partials (fp32 o_part and lse), written by the chunk kernel and read by
    the merge kernel: once each way beyond the minimum."""
    splits = tile_int(tile, "num_splits")
    if variant == "triton-splitk" and splits and splits > 1:
        n = shape.batch * shape.q_heads * splits * (shape.head_dim + 1) * 4
        return n, f"split-K partials: {splits} chunks x (o_part fp32 + lse) = {n / 1e6:.2f} MB written, then read by the merge"
    return 0, ""


def reread_cause(shape: Any, tile: dict[str, Any], ratio: float) -> str | None:
    group = shape.q_heads // shape.kv_heads
    if group > 1 and abs(ratio - group) < 0.25 * group:
        return (f"K/V read once per query head instead of once per KV head (x{group} for GQA group {group}): "
                "the kernel expands the cache or runs one program per query head")
    return None


def tile_config(variant: str, inputs: tuple) -> dict[str, Any]:
    """The config decode_attention launches with (the dispatcher's; decode has no autotuner)."""
    if variant not in _TRITON:
        return {}
    from kernels.decode import triton_decode

    q, k_cache = inputs[0], inputs[1]
    batch, q_heads, head_dim = q.shape
    kv_heads, max_len = k_cache.shape[1], k_cache.shape[2]
    cfg, chunk = triton_decode.resolve_decode_config(
        batch, q_heads, kv_heads, max_len, head_dim, q.device,
        num_splits=1 if variant == "triton-nosplit" else None)
    return {"BLOCK_N": cfg.block_n, "BLOCK_G": cfg.block_g, "num_warps": cfg.num_warps,
            "num_stages": cfg.num_stages, "chunk": chunk, "num_splits": cfg.num_splits,
            "source": f"decode dispatcher ({cfg.source})"}


def launch_notes(variant: str, tile: dict[str, Any], launches: Launches) -> list[str]:
    """The chunk kernel's grid should show the split count the target computed."""
    if not (variant == "triton-splitk" and tile_int(tile, "num_splits")):
        return []
    grids = [grid for name, grid in launches if "chunk" in name]
    want = f", {tile['num_splits']}, "
    if grids and want not in grids[0]:
        return [f"the chunk kernel's grid {grids[0]} does not show num_splits={tile['num_splits']} that the "
                "target computed; the split-K byte model may be off"]
    return []


TILES = TileModel(computed_flops=computed_flops, extra_bytes=extra_bytes, reread_cause=reread_cause,
                  tile_config=tile_config, launch_notes=launch_notes)
