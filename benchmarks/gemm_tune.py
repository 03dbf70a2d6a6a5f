#!/usr/bin/env python
"""Tune the GEMM dispatcher on this GPU against cuBLAS (torch.matmul).

    PYTHONPATH=. python benchmarks/gemm_tune.py [--out DIR] [--budget-s 150]

Points: the 8B model's decode GEMMs, x [M, K] @ w [K, N] as kernelprof/methods/llm/model.py
multiplies them (wqkv 4096x6144, wo 4096x4096, w13 4096x28672, w2 14336x4096), M in {1, 16, 32,
64}, bf16; then 1024^3, 4096^3, 8192^3 in bf16 and fp16. Per point (benchmarks/gemm_points.py):
cuBLAS, the autotuned tiled kernel, for M <= 64 the skinny rule, split counts around it and four
other tiles, for squares the persistent TMA kernel (autotuned) and, at 1024^3, five explicit tiles.
CUDA-event medians of CUDA-graph replays (benchmarks/tuning.py; --direct for direct launches), the L2
flushed before each call when the inputs are under 256 MB. Points whose
start would pass --budget-s are skipped (noted).

Writes after every point: benchmarks/results/gemm-tune-<gpu>.json (TFLOP/s, TB/s, ratio vs cuBLAS
of the best Triton variant and of the rule) and kernels/gemm/tuned_h200.json (the best explicit
config per bucket where it beats the autotuned tiled kernel; read by kernels/gemm/dispatch.py);
copies of both in --out (the table as gemm-tuned_h200.json).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.gemm_points import measure_point  # noqa: E402
from benchmarks.tuning import Timer, TuneRun  # noqa: E402
from kernelprof.outputs.benchfile import Case  # noqa: E402
from kernels.gemm.dispatch import TABLE_PATH  # noqa: E402

WEIGHTS_KN = ((4096, 6144), (4096, 4096), (4096, 28672), (14336, 4096))


def points() -> list[tuple[int, int, int, torch.dtype]]:
    skinny = [(m, n, k, torch.bfloat16) for m in (16, 1, 64, 32) for k, n in WEIGHTS_KN]
    squares = [(s, s, s, dt) for s in (1024, 4096, 8192) for dt in (torch.bfloat16, torch.float16)]
    return skinny + squares


def record(run: TuneRun, rec: dict) -> None:
    name = f"gemm/{rec['bucket']}"
    cub = rec["cublas"]
    variants = [r for r in rec["baselines"] + rec["candidates"] if r.get("correct") and "tflops" in r]
    if "tflops" not in cub or not variants:
        run.notes["failures"].append({"point": name, "error": "cuBLAS or every Triton variant failed"})
        return
    top = max(variants, key=lambda r: r["tflops"])
    rule = rec["rule"]
    run.cases.append(Case(name=name, metric="tflops", value=top["tflops"], baseline="cublas",
                          baseline_value=cub["tflops"], extra={
                              "best_variant": top["name"], "best_tb_s": top["tb_s"], "cublas_tb_s": cub["tb_s"],
                              "rule_tflops": rule.get("tflops") if rule else None,
                              "rule_vs_cublas": round(rule["tflops"] / cub["tflops"], 4)
                              if rule and "tflops" in rule else None,
                              "flops": rec["flops"], "bytes": rec["bytes"], "cublas": cub,
                              "baselines": rec["baselines"], "candidates": rec["candidates"]}))
    best, auto = rec["best"], rec["baselines"][0]
    if best is not None and (rule is not None or best["tflops"] > 1.02 * auto.get("tflops", 0.0)):
        entry = {k: v for k, v in best["config"].items() if k not in ("source", "note")}
        entry.update(tflops=best["tflops"], cublas_tflops=cub["tflops"])
        run.table_entries[rec["bucket"]] = entry
    run.log(f"  best {top['name']}: {top['tflops']:.1f} TFLOP/s = {top['tflops'] / cub['tflops']:.3f}x cuBLAS"
            + (f"; rule {rule.get('tflops')}" if rule else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", type=Path, default=None, help="also copy the results file and table here")
    ap.add_argument("--budget-s", type=float, default=150.0, help="stop starting new points after this")
    ap.add_argument("--table", type=Path, default=TABLE_PATH)
    ap.add_argument("--points", type=int, default=None, help="only the first N points (smoke runs)")
    ap.add_argument("--direct", action="store_true",
                    help="time direct launches (host launch cost included) instead of CUDA-graph replays")
    ap.add_argument("--flush", choices=("write", "read"), default="write",
                    help="how the L2 flush sweeps: write (zero a buffer, as do_bench) or read (leaves no dirty "
                         "lines for the timed call to write back)")
    args = ap.parse_args()
    torch.manual_seed(0)
    run = TuneRun("gemm-tune", args.table, args.out, args.budget_s)
    props = torch.cuda.get_device_properties(0)
    run.notes.update(gpu=props.name, num_sms=props.multi_processor_count,
                     layout="A [M, K] row-major @ B [K, N] row-major (the model's weights as stored)",
                     flops_counted="2*M*N*K", bytes_counted="A, B once and C once")
    timer = Timer(mode="direct" if args.direct else "graph", flush=args.flush)
    run.notes["timing"] = ("direct launches, CUDA events around each call" if args.direct else
                           "CUDA-graph replays of reps x (flush, call) minus the same graph of flushes; "
                           "the direct-launch median beside each row (direct_median_us)")
    run.notes["l2_flush"] = {"write": "zeroing sweep of 256 MB (as do_bench)",
                             "read": "reading sweep of 256 MB (no dirty lines left)"}[args.flush]
    todo = points()[:args.points]
    for i, (m, n, k, dtype) in enumerate(todo):
        label = f"{m}x{n}x{k} {str(dtype).replace('torch.', '')}"
        if run.over_budget():
            run.notes["skipped"].append({"point": label, "why": f"time budget {args.budget_s:.0f} s spent"})
            continue
        run.log(f"({i + 1}/{len(todo)}) {label}")
        run.point(label, lambda: record(run, measure_point(timer, m, n, k, dtype, props.multi_processor_count, run.log)))
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
