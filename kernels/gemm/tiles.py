"""What the GEMM kernels' tiles compute beyond 2MNK, the tile each variant launched with, and why
its DRAM reads exceed the minimum."""
from __future__ import annotations

from typing import Any

from kernels.op_spec import TileModel, autotuned_config, cdiv, tile_int


def computed_flops(variant: str, shape: Any, tile: dict[str, Any],
                   compute_capability: str | None) -> tuple[int | None, str]:
    """FLOPs of whole tiles: edge tiles are padded up to BLOCK_M x BLOCK_N x BLOCK_K."""
    bm, bn, bk = tile_int(tile, "BLOCK_M"), tile_int(tile, "BLOCK_N"), tile_int(tile, "BLOCK_K")
    if bm and bn and bk:
        flops = 2 * cdiv(shape.m, bm) * bm * cdiv(shape.n, bn) * bn * cdiv(shape.k, bk) * bk
        pad = "" if flops == 2 * shape.m * shape.n * shape.k else ": edge tiles padded to whole tiles"
        return flops, f"tiles {bm}x{bn}x{bk}{pad}"
    if all(x % 256 == 0 for x in (shape.m, shape.n, shape.k)):
        return 2 * shape.m * shape.n * shape.k, "M, N, K are multiples of 256: no tile padding for any usual tile"
    return None, "tile unknown (library kernel) and the shape is not a multiple of 256"


def reread_cause(shape: Any, tile: dict[str, Any], ratio: float) -> str:
    return ("re-reads that miss L2: every tile row re-reads its A panel and every tile column its B panel; "
            "L2 serves part of those re-reads, the misses come from DRAM again")


def tile_config(variant: str, inputs: tuple) -> dict[str, Any]:
    """The tile the Triton variants launched with after warm-up ({} for cuBLAS)."""
    if variant not in ("triton", "triton-persistent"):
        return {}
    from kernels.gemm import triton_gemm

    if variant == "triton":
        a, b = inputs[0], inputs[1]
        cfg = triton_gemm._dispatch(a.shape[0], b.shape[1], a.shape[1], a.dtype, a.device)
        if not isinstance(cfg, str):  # the dispatcher's explicit config (skinny M or tuned table)
            return {"BLOCK_M": cfg.block_m, "BLOCK_N": cfg.block_n, "BLOCK_K": cfg.block_k,
                    "GROUP_SIZE_M": cfg.group_m, "num_warps": cfg.num_warps, "num_stages": cfg.num_stages,
                    "split_k": cfg.split_k, "source": f"gemm dispatcher ({cfg.source})"}
    return autotuned_config(triton_gemm._gemm_tuned if variant == "triton" else triton_gemm._persistent_tuned)


TILES = TileModel(computed_flops=computed_flops, reread_cause=reread_cause, tile_config=tile_config)
