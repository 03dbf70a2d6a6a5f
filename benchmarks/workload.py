"""The paper's binned workload on one GPU, timed: Azure conversation (default) on the Llama-3.1-8B shape.

Runs `run_binned` (what `kernelprof workload` runs) into a fresh JSONL, and writes
`benchmarks/results/workload-<gpu>.json`: the wall time of the whole workload, measured energy,
the paper's estimate (TDP / peak FLOP/s x FLOPs) and their ratio, the prefill/decode split, each
bin's J per request, and, with `--previous FILE.jsonl` (an earlier run of the same workload), each
bin's energy against that run's, as a repeatability figure.

    PYTHONPATH=. python benchmarks/workload.py [--trace azure-conv] [--previous traces/....jsonl]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernelprof.outputs.benchfile import Case, write_results  # noqa: E402
from kernelprof.gpu.devices import require_gpu  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trace", default="azure-conv")
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--out", default="runs/bench-workload.jsonl")
    ap.add_argument("--profiles", default=None, help="folder for the bins' profile runs (default: none saved)")
    ap.add_argument("--previous", help="an earlier per-bin JSONL of the same workload and model")
    ap.add_argument("--from-run", help="don't measure: take a `kernelprof workload` summary run just made on this "
                                       "machine (its JSONL beside it; its wall time from the summary)")
    args = ap.parse_args()
    require_gpu("benchmarks/workload.py")
    from kernelprof.methods.llm.binned import BinnedSummary, read_bins, run_binned
    from kernelprof.outputs.runfile import load_run

    if args.from_run:
        run = load_run(args.from_run, kind="workload")
        s = BinnedSummary.from_json(run.payload["summary"])
        out = Path(args.from_run).parent / run.payload["bins_file"]
        wall = s.wall_s
        args.trace, args.model = s.workload, s.model
        ok = [r for r in read_bins(out).values() if r.get("status") == "ok"]
        if len(ok) != s.bins_measured:  # a summary left from another run beside a new JSONL
            raise SystemExit(f"{args.from_run} counts {s.bins_measured} measured bins but {out} has {len(ok)}")
    else:
        out = Path(args.out)
        if out.exists():
            out.unlink()  # a fresh measurement of every bin, not a resume
        t0 = time.perf_counter()
        s = run_binned(args.trace, args.model, out=out, profiles_dir=args.profiles,
                       on_bin=lambda b, rec: print(f"bin {b.input_bin}/{b.output_bin}: {rec['status']} "
                                                   f"{rec.get('energy_per_batch_j', 0):.0f} J/batch", flush=True))
        wall = time.perf_counter() - t0
    tag = f"{args.trace}/{args.model}"
    cases = [Case(f"{tag}/wall", "s", wall, extra={"bins": s.bins_measured, "failed": list(s.bins_failed)}),
             Case(f"{tag}/energy", "j", s.energy_j, extra={"requests": s.requests, "dropped": s.dropped}),
             Case(f"{tag}/measured_over_paper", "x", s.ratio,
                  extra={"paper_estimate_j": s.paper_estimate_j,
                         "paper_range_unoptimized": [2.0, 6.1], "paper_range_vllm": [1.27, 1.64]}),
             Case(f"{tag}/j_per_request", "j", s.j_per_request)]
    if s.prefill_energy_j is not None and s.decode_energy_j is not None:
        cases.append(Case(f"{tag}/prefill_share", "pct",
                          100 * s.prefill_energy_j / (s.prefill_energy_j + s.decode_energy_j)))
    recs = read_bins(out)
    prev = read_bins(Path(args.previous)) if args.previous else {}
    diffs = []
    for key, r in recs.items():
        if r.get("status") != "ok":
            continue
        extra = {"batch": r["batch"], "requests": r["requests"], "time_per_batch_s": r["time_per_batch_s"]}
        p = prev.get(key)
        if p and p.get("status") == "ok" and p.get("batch") == r["batch"]:
            d = 100 * (r["energy_per_batch_j"] - p["energy_per_batch_j"]) / p["energy_per_batch_j"]
            extra["vs_previous_pct"] = d
            diffs.append(d)
        cases.append(Case(f"{tag}/bin/{key}/j_per_request", "j", r["energy_per_batch_j"] / r["batch"], extra=extra))
    notes = {"method": "one measured batch per occupied bin (in-run); total = sum of requests / batch x J per batch",
             "paper": "Fernandez et al. 2025: measured / (TDP / peak x FLOPs) was 2.0-6.1x for unoptimized "
                      "PyTorch and 1.27-1.64x for vLLM, on an A6000"}
    if diffs:
        cases.append(Case(f"{tag}/vs_previous_median_abs_pct", "pct", statistics.median(abs(d) for d in diffs),
                          extra={"bins": len(diffs), "max_abs_pct": max(abs(d) for d in diffs),
                                 "previous": args.previous}))
    path = write_results("workload", cases, notes=notes)
    print(json.dumps({"wall_s": wall, "ratio": s.ratio, "energy_j": s.energy_j, "bins": s.bins_measured,
                      "median_abs_vs_previous_pct": statistics.median(abs(d) for d in diffs) if diffs else None}))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
