"""One point of the GEMM tuning run: cuBLAS, the autotuned Triton paths, and explicit configs (the
skinny-M rule, split counts around it, a few tiles at the best split), each checked once against
an fp32 cuBLAS product and timed (benchmarks/tuning.py). Used by benchmarks/gemm_tune.py."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from benchmarks.tuning import Timer, error_line, rel_err
from kernels.gemm import gemm, gemm_flops, gemm_min_bytes, gemm_persistent
from kernels.gemm.dispatch import GemmConfig, k_per_split, rule_config, shape_bucket

# Output rounding 2u (bf16 u = 2^-8, fp16 2^-11) plus fp32 accumulation noise at K <= 14336.
RTOL = {torch.bfloat16: 8e-3, torch.float16: 2e-3}
# Skinny tiles tried at the best split (BLOCK_N, BLOCK_K, warps, stages), besides the rule's.
SKINNY_TILES = ((32, 128, 4, 4), (128, 64, 4, 4), (64, 256, 4, 3), (64, 128, 8, 4))
# 1024^3: the autotuner's 128-row tiles leave 64 tiles for 132 SMs; smaller tiles and split-K.
SQUARE_CANDIDATES = (
    GemmConfig(block_m=128, block_n=128, block_k=64, group_m=8, num_warps=8, num_stages=4),
    GemmConfig(block_m=64, block_n=128, block_k=64, group_m=8, num_warps=4, num_stages=4),
    GemmConfig(block_m=128, block_n=64, block_k=64, group_m=8, num_warps=4, num_stages=4),
    GemmConfig(block_m=64, block_n=64, block_k=64, group_m=8, num_warps=4, num_stages=4),
    GemmConfig(block_m=128, block_n=128, block_k=64, group_m=8, num_warps=8, num_stages=4, split_k=2),
)


def split_candidates(rule_split: int, k: int, block_k: int) -> list[int]:
    out: list[int] = []
    for s in (rule_split, 1, 2 * rule_split, 4 * rule_split, max(1, rule_split // 2)):
        s = k_per_split(k, min(s, 16), block_k)[1]
        if k_per_split(k, s, block_k)[0] >= 256 and s not in out:
            out.append(s)
    return out[:4]


def measure_point(timer: Timer, m: int, n: int, k: int, dtype: torch.dtype, num_sms: int, log,
                  device: str = "cuda") -> dict[str, Any]:
    """One (M, N, K, dtype): rows for every variant; best explicit config; cuBLAS. device='cpu'
    is for the CPU test of this function (interpreter)."""
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype) / k ** 0.5
    ref = (a.float() @ b.float()).double()
    flops, nbytes = gemm_flops(m, n, k), gemm_min_bytes(m, n, k, dtype)
    rtol = RTOL[dtype]

    def run(name: str, fn, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {"name": name, **(extra or {})}
        try:
            out = fn()
            if a.is_cuda:
                torch.cuda.synchronize()
            row["rel_err"] = rel_err(out, ref)
            row["correct"] = row["rel_err"] < rtol
            del out
            t = timer.time(fn, nbytes)
        except Exception as exc:  # noqa: BLE001 - OutOfResources, compile errors, unsupported
            row["error"] = error_line(exc)
            log(f"    {name:40s} FAILED {row['error'][:120]}")
            if a.is_cuda:
                torch.cuda.empty_cache()
            return row
        row.update(t.to_json())
        row["tflops"] = round(flops / (t.median_ms * 1e-3) / 1e12, 3)
        row["tb_s"] = round(nbytes / (t.median_ms * 1e-3) / 1e12, 4)
        flag = "" if row["correct"] else f"  <-- rel err {row['rel_err']:.1e} above {rtol:.1e}"
        log(f"    {name:40s} {t.median_ms * 1e3:9.1f} us {row['tflops']:8.1f} TFLOP/s {row['tb_s']:6.3f} TB/s{flag}")
        return row

    def ours(cfg: GemmConfig) -> dict[str, Any]:
        name = (f"triton {cfg.block_m}x{cfg.block_n}x{cfg.block_k} w{cfg.num_warps} st{cfg.num_stages}"
                f" split{cfg.split_k}")
        return run(name, lambda: gemm(a, b, config=cfg), {"config": cfg.to_json()})

    cublas = run("cublas", lambda: torch.matmul(a, b))
    baselines = [run("triton autotune", lambda: gemm(a, b, config="autotune"))]
    rows: list[dict[str, Any]] = []
    rule = rule_config(m, n, k, a.element_size(), num_sms)
    if rule is not None:
        for s in split_candidates(rule.split_k, k, rule.block_k):
            rows.append(ours(rule if s == rule.split_k else replace(rule, split_k=s, source="candidate")))
        good = [r for r in rows if r.get("correct") and "tflops" in r]
        best_split = max(good, key=lambda r: r["tflops"])["config"]["split_k"] if good else rule.split_k
        for bn, bk, warps, stages in SKINNY_TILES:
            split = k_per_split(k, best_split, bk)[1]
            rows.append(ours(replace(rule, block_n=bn, block_k=bk, num_warps=warps, num_stages=stages,
                                     split_k=split, source="candidate")))
    else:
        baselines.append(run("triton-persistent autotune", lambda: gemm_persistent(a, b)))
        if max(m, n, k) <= 2048:
            rows.extend(ours(replace(c, source="candidate")) for c in SQUARE_CANDIDATES)
    good = [r for r in rows if r.get("correct") and "tflops" in r]
    best = max(good, key=lambda r: r["tflops"]) if good else None
    return {"bucket": shape_bucket(m, n, k, {torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]),
            "flops": flops, "bytes": nbytes, "cublas": cublas, "baselines": baselines, "candidates": rows,
            "best": best, "rule": rows[0] if rule is not None and rows else None}
