"""What the attention kernels' tiles compute beyond the kept (query, key) pairs (masked causal
tiles, rows and keys padded to whole tiles), the tile each variant launched with, and why K and V
are read more than once."""
from __future__ import annotations

from typing import Any

from kernels.op_spec import TileModel, autotuned_config, cdiv, tile_int

# FlashAttention-2's forward tile (BLOCK_M, BLOCK_N) by head_dim, for torch's sdpa-flash on sm80 and
# sm90 without dropout (flash_fwd_launch_template.h, run_mha_fwd_hdim*). Only BLOCK_M matters for the
# causal count when BLOCK_N divides it.
FA2_FWD_TILES: dict[int, tuple[int, int]] = {32: (128, 128), 64: (128, 128), 128: (128, 64)}
FA2_CCS = ("8.0", "9.0")


def causal_computed_pairs(seq_len: int, block_m: int, block_n: int) -> int:
    """(query, key) pairs a tiled causal kernel computes per head: each query block of block_m rows
    (padded rows included) computes every key block up to the one holding its last row's diagonal,
    masked tiles included. For seq_len a multiple of block_m and block_n dividing block_m this is
    T(T+1)/2 * block_m^2 with T = seq_len / block_m (exact: seq_len(seq_len+1)/2)."""
    pairs = 0
    for m in range(cdiv(seq_len, block_m)):
        last_key = min((m + 1) * block_m, seq_len)
        pairs += block_m * cdiv(last_key, block_n) * block_n
    return pairs


def full_computed_pairs(q_len: int, kv_len: int, block_m: int, block_n: int) -> int:
    """Pairs a tiled non-causal kernel computes: rows and keys padded up to whole tiles."""
    return cdiv(q_len, block_m) * block_m * cdiv(kv_len, block_n) * block_n


def computed_flops(variant: str, shape: Any, tile: dict[str, Any],
                   compute_capability: str | None) -> tuple[int | None, str]:
    """4 * head_dim FLOPs per computed pair, over the pairs this variant's tiles compute."""
    s, d, bh = shape.seq_len, shape.head_dim, shape.batch * shape.q_heads
    bm, bn, source = tile_int(tile, "BLOCK_M"), tile_int(tile, "BLOCK_N"), "Triton autotuner"
    if variant == "sdpa-flash" and compute_capability in FA2_CCS and d in FA2_FWD_TILES:
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


def reread_cause(shape: Any, tile: dict[str, Any], ratio: float) -> str:
    bm = tile_int(tile, "BLOCK_M")
    blocks = f"{cdiv(shape.seq_len, bm)} " if bm else ""
    return (f"re-reads that miss L2: K and V of a head are read by each of its {blocks}query blocks; L2 "
            "serves most of them, the misses come from DRAM again")


def tile_config(variant: str, inputs: tuple) -> dict[str, Any]:
    """The autotuner's tile for the Triton variants after warm-up ({} for the references and SDPA)."""
    if variant not in ("triton", "triton-tma"):
        return {}
    from kernels.attention import triton_flash

    return autotuned_config(triton_flash._attn_tuned)


TILES = TileModel(computed_flops=computed_flops, reread_cause=reread_cause, tile_config=tile_config)
