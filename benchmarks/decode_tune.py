#!/usr/bin/env python
"""Tune the decode dispatcher on this GPU and compare it with the SDPA backends.

    PYTHONPATH=. python benchmarks/decode_tune.py [--out DIR] [--budget-s 210]

Grid: batch {1, 4, 16, 64} x context {1k, 8k, 32k, 128k} x heads (Hq/Hkv) {32/8, 64/8, 32/32},
head_dim 128, bf16, every cache full; then the 8B model's decode shapes (B 1/8/64, 32/8, ctx 640). Per point (benchmarks/decode_points.py): the SM-count rule's
config, split counts around it, four other tiles at the best split, and SDPA flash / efficient /
cudnn (GQA through enable_gqa; a backend that refuses it runs on K/V repeated per query head,
labelled repeat_kv). Times are medians of CUDA-event times of CUDA-graph replays (benchmarks/tuning.py;
--direct for direct launches), the L2 flushed before each call when the cache is under 256 MB. Points run headline-first; a point whose K+V exceed 60% of GPU memory
is skipped, and so is every point left when --budget-s runs out (both noted).

Writes after every point: benchmarks/results/decode-tune-<gpu>.json (TB/s of minimum bytes, best
config, ratio vs best SDPA, the rule's TB/s) and kernels/decode/tuned_h200.json (best config per
bucket, read by kernels/decode/dispatch.py); copies of both in --out (the table as
decode-tuned_h200.json).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.decode_points import measure_point  # noqa: E402
from benchmarks.tuning import Timer, TuneRun  # noqa: E402
from kernelprof.outputs.benchfile import Case  # noqa: E402
from kernels.decode.dispatch import TABLE_PATH  # noqa: E402

HEADS = ((32, 8), (64, 8), (32, 32))
HEADLINE = [(1, 32, 8, 32768), (16, 32, 8, 8192), (64, 32, 8, 1024)]


# The 8B model's own decode shapes (`kernelprof llm`, 512 in / 128 out: a 640-token cache, bucket ctx512)
# at batch 1, 8 and 64: batch 8 is in no grid bucket, so without these the model's decode runs the rule.
LLM_POINTS = [(1, 32, 8, 640), (8, 32, 8, 640), (64, 32, 8, 640)]


def grid_points() -> list[tuple[int, int, int, int]]:
    """Headline points first (the issue's table), then the model's own shapes (the end-to-end path
    runs them; last in the order, a 150 s budget never reached them on an H100, 2026-12-07), then the
    rest smallest cache first."""
    rest = [(b, hq, hkv, n) for b in (1, 4, 16, 64) for hq, hkv in HEADS for n in (1024, 8192, 32768, 131072)]
    rest = sorted((p for p in rest if p not in HEADLINE), key=lambda p: p[0] * p[2] * p[3])
    return HEADLINE + LLM_POINTS + rest


def record(run: TuneRun, point: tuple, rec: dict) -> None:
    b, hq, hkv, n = point
    best, sdpa, rule = rec["best"], rec["sdpa_best"], rec["rule"]
    name = f"decode/bf16/{rec['bucket']}"
    extra = {"candidates": rec["candidates"], "sdpa": rec["sdpa"], "bytes": rec["bytes"],
             "rule_tb_s": rule.get("tb_s"), "rule_config": rule.get("config"),
             "rule_vs_sdpa": round(rule["tb_s"] / sdpa["tb_s"], 4) if sdpa and "tb_s" in rule else None,
             "sdpa_best_backend": f"sdpa-{sdpa['backend']} ({sdpa['gqa']})" if sdpa else None}
    if best is None:
        run.notes["failures"].append({"point": name, "error": "no correct Triton candidate"})
        return
    run.cases.append(Case(name=name, metric="tb_s", value=best["tb_s"], baseline="sdpa-best" if sdpa else None,
                          baseline_value=sdpa["tb_s"] if sdpa else None, extra={"best_config": best["config"], **extra}))
    entry = {k: v for k, v in best["config"].items() if k not in ("source", "note")}
    entry.update(tb_s=best["tb_s"], sdpa_best_tb_s=sdpa["tb_s"] if sdpa else None, rule_tb_s=rule.get("tb_s"))
    run.table_entries[rec["bucket"]] = entry
    ratio = f"{best['tb_s'] / sdpa['tb_s']:.3f}x best SDPA ({sdpa['backend']})" if sdpa else "no SDPA ran"
    run.log(f"  best {best['name']}: {best['tb_s']:.3f} TB/s, {ratio}; rule {rule.get('tb_s')} TB/s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", type=Path, default=None, help="also copy the results file and table here")
    ap.add_argument("--budget-s", type=float, default=210.0, help="stop starting new points after this")
    ap.add_argument("--table", type=Path, default=TABLE_PATH)
    ap.add_argument("--points", type=int, default=None, help="only the first N points (smoke runs)")
    ap.add_argument("--direct", action="store_true",
                    help="time direct launches (host launch cost included) instead of CUDA-graph replays")
    ap.add_argument("--flush", choices=("write", "read"), default="write",
                    help="how the L2 flush sweeps: write (zero a buffer, as do_bench) or read (leaves no dirty "
                         "lines for the timed call to write back)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)  # SDPA explains every refused backend
    torch.manual_seed(0)
    run = TuneRun("decode-tune", args.table, args.out, args.budget_s)
    props = torch.cuda.get_device_properties(0)
    run.notes.update(gpu=props.name, num_sms=props.multi_processor_count, head_dim=128, dtype="bf16",
                     bytes_counted="minimum: K and V once plus q and o (kernels/decode/counts.py)",
                     gqa_for_sdpa="enable_gqa=True; repeat_kv where a backend refuses it (labelled)")
    timer = Timer(mode="direct" if args.direct else "graph", flush=args.flush)
    run.notes["timing"] = ("direct launches, CUDA events around each call" if args.direct else
                           "CUDA-graph replays of reps x (flush, call) minus the same graph of flushes; "
                           "the direct-launch median beside each row (direct_median_us)")
    run.notes["l2_flush"] = {"write": "zeroing sweep of 256 MB (as do_bench)",
                             "read": "reading sweep of 256 MB (no dirty lines left)"}[args.flush]
    points = grid_points()[:args.points]
    for i, point in enumerate(points):
        b, hq, hkv, n = point
        label = f"B{b} Hq{hq}/Hkv{hkv} ctx{n}"
        if run.over_budget():
            run.notes["skipped"].append({"point": label, "why": f"time budget {args.budget_s:.0f} s spent"})
            continue
        cache_bytes = 2 * b * hkv * n * 128 * 2
        if cache_bytes > 0.6 * props.total_memory:
            run.notes["skipped"].append({"point": label, "why": f"K+V {cache_bytes / 2**30:.0f} GiB > 60% of memory"})
            run.log(f"({i + 1}/{len(points)}) {label}: skipped, K+V {cache_bytes / 2**30:.0f} GiB")
            continue
        run.log(f"({i + 1}/{len(points)}) {label}, K+V {cache_bytes / 2**20:.0f} MiB")
        run.point(label, lambda: record(run, point, measure_point(timer, b, hq, hkv, n, 128,
                                                                  props.multi_processor_count, run.log)))
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
