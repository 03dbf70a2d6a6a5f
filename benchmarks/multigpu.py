"""Tensor parallelism's latency/energy trade: TP 1, 2 (and 4) on an 8B-shaped model, per-GPU energy.

    PYTHONPATH=. python benchmarks/multigpu.py [--tp 1 2 4] [--batch 8 64] [--model llama-3.1-8b]

For each TP degree and batch, runs `torchrun --nproc-per-node TP benchmarks/multigpu.py --worker ...`
(NCCL_NVLS_ENABLE=0), where every rank samples its own GPU and rank 0 writes an `llm-tp` run file
(kernelprof.methods.llm.tp_run; TP 1 is the plain single-GPU model through the same measurement).
Then writes benchmarks/results/multigpu-<gpu>.json: per case the time and the energy (all GPUs) per
request (one generate call of `batch` sequences, 512 in / 128 out), each GPU's energy, and the change
against TP 1 at the same batch, beside the seed paper's figures, labelled as the paper's.
In-run energy only (no steady-state cross-check); prefill launched eagerly (no prefill CUDA graph),
decode from a CUDA graph, at every TP degree alike.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Fernandez et al. 2025 (the seed paper), tensor parallelism on 300 W PCIe cards (A6000-class), vs 1 GPU.
PAPER = {2: {"latency_change_pct": -40.16, "energy_change_pct": +29.3},
         4: {"latency_change_pct": -61.34, "energy_change_pct": +55.23}}
PAPER_LABEL = ("paper: Fernandez et al. 2025, 'Energy Considerations of LLM Inference', TP vs 1 GPU on 300 W "
               "PCIe cards; not measured here")


def worker(a: argparse.Namespace) -> int:
    from kernelprof.methods.llm.tp_run import run_tp_llm

    run_tp_llm(a.model, a.tp_one, a.batch_one, a.input, a.output, requests=a.requests, out_prefix=a.out)
    return 0


def launch(tp: int, batch: int, a: argparse.Namespace, out: Path) -> Path:
    env = {**os.environ, "NCCL_NVLS_ENABLE": "0", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={tp}", __file__,
           "--worker", "--tp-one", str(tp), "--batch-one", str(batch), "--model", a.model, "--input", str(a.input),
           "--output", str(a.output), "--requests", str(a.requests), "--out", str(out)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, env=env, check=True)
    return Path(f"{out}.json")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tp", type=int, nargs="+", default=None, help="TP degrees (default 1, 2 and 4 if visible)")
    p.add_argument("--batch", type=int, nargs="+", default=[8, 64])
    p.add_argument("--model", default="llama-3.1-8b")
    p.add_argument("--input", type=int, default=512)
    p.add_argument("--output", type=int, default=128)
    p.add_argument("--requests", type=int, default=3)
    p.add_argument("--runs-dir", default=os.environ.get("OUT", "runs") + "/multigpu")
    p.add_argument("--results-dir", default=None, help="default benchmarks/results (a smoke run: $OUT)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tp-one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--batch-one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a)

    import torch

    from kernelprof.methods.llm.tp_ranks import TPResult
    from kernelprof.outputs.benchfile import Case, device_record, write_results
    from kernelprof.outputs.runfile import load_run

    n_gpus = torch.cuda.device_count()
    tps = a.tp or [t for t in (1, 2, 4) if t <= n_gpus]
    if 1 not in tps:
        tps = [1, *tps]  # the baseline of every change
    if max(tps) > n_gpus:
        raise SystemExit(f"--tp {max(tps)} needs {max(tps)} GPUs; {n_gpus} are visible")
    runs = Path(a.runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[int, int], TPResult] = {}
    for batch in a.batch:
        for tp in tps:
            path = launch(tp, batch, a, runs / f"{a.model}-tp{tp}-b{batch}")
            results[(tp, batch)] = TPResult.from_json(load_run(path, kind="llm-tp").payload["result"])
    cases = []
    for (tp, batch), r in sorted(results.items()):
        base = results[(1, batch)]
        per_gpu = {f"rank{rec.rank}_{rec.gpu_uuid}": sum(p.energy_j or 0.0 for p in rec.phases) / r.requests
                   for rec in r.ranks}
        lat = 100 * (r.time_per_request_s - base.time_per_request_s) / base.time_per_request_s
        en = (None if r.energy_per_request_j is None or not base.energy_per_request_j else
              100 * (r.energy_per_request_j - base.energy_per_request_j) / base.energy_per_request_j)
        extra = {"tp": tp, "batch": batch, "requests": r.requests, "energy_per_gpu_per_request_j": per_gpu,
                 "phases": [{"name": p.name, "time_s": p.time_s, "energy_per_gpu_j": list(p.energy_per_gpu_j),
                             "comm_time_share": p.comm_time_share} for p in r.phases],
                 "measured_latency_change_pct": lat, "measured_energy_change_pct": en}
        if tp in PAPER:
            extra["paper"] = {**PAPER[tp], "label": PAPER_LABEL}
        name = f"{a.model}/tp{tp}/b{batch}/{a.input}in-{a.output}out"
        cases.append(Case(f"{name}/time_per_request", "s", r.time_per_request_s, "tp1", base.time_per_request_s,
                          extra))
        if r.energy_per_request_j is not None:
            cases.append(Case(f"{name}/energy_per_request", "j", r.energy_per_request_j, "tp1",
                              base.energy_per_request_j, {"tp": tp, "batch": batch}))
    dev = {**device_record(0), "gpus_used": max(tps), "gpus_visible": n_gpus}
    out = write_results("multigpu", cases, device=dev, notes={
        "paper_figures": {f"tp{k}": v for k, v in PAPER.items()}, "paper_label": PAPER_LABEL,
        "method": "in-run: every rank's own sampler over its GPU, phases by CUDA events, all GPUs summed; "
                  "a request is one generate call of `batch` sequences; NCCL_NVLS_ENABLE=0",
        "runs_dir": str(runs)}, results_dir=a.results_dir)
    print(f"wrote {out}")
    for c in cases:
        print(c.name, f"{c.value:.4g} {c.metric}", "" if c.ratio is None else f"(TP1 / this = {c.ratio:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
