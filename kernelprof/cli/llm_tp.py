"""`kernelprof llm --tp N`: parse-and-print side of the tensor-parallel run (logic in methods/llm/tp_run)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.table import Table

from kernelprof.cli.output import console, fmt, print_json


def run_tp(args: argparse.Namespace, prefix: Path) -> int:
    from kernelprof.methods.llm.tensor_parallel import check_tp
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.tp_run import launch_under_torchrun, run_tp_llm, under_torchrun

    check_tp(get_config(args.model), args.tp)  # before any process starts
    if args.mode not in ("optimized", "eager"):
        from kernelprof.errors import UsageError

        raise UsageError(f"--tp runs one --mode (optimized or eager), got {args.mode!r}")
    if not under_torchrun():
        # Re-run this same command line under torchrun, NCCL_NVLS_ENABLE=0 in its environment.
        return launch_under_torchrun(args.tp, sys.argv[1:])
    r = run_tp_llm(args.model, args.tp, args.batch, args.input_len, args.output_len, mode=args.mode, gemm=args.gemm,
                   requests=args.tp_requests, kernel_slices=args.kernel_slices, out_prefix=f"{prefix}-tp{args.tp}")
    if r is None:  # ranks other than 0 print nothing
        return 0
    if args.json:
        print_json(r.to_json())
    else:
        render_tp(r.to_json())
        console.print(f"saved {prefix}-tp{args.tp}.json and {prefix}-tp{args.tp}.trace.json (a process per GPU)")
    return 0


def render_run(run) -> None:
    render_tp(run.payload["result"])


def render_tp(d: dict) -> None:
    from kernelprof.methods.llm.tp_ranks import TPResult

    r = TPResult.from_json(d)
    t = Table(title=f"{r.model} ({r.mode}) TP {r.tp}, batch {r.batch}, {r.input_len} in / {r.output_len} out, "
                    f"{r.requests} requests on {r.ranks[0].gpu_name}")
    for col in ("phase", "rank", "host", "GPU UUID", "time", "energy", "mean W", "comm share"):
        t.add_column(col, justify="left" if col in ("phase", "host", "GPU UUID") else "right",
                     min_width=12 if col == "GPU UUID" else None)
    for i, p in enumerate(r.phases):
        for rec, e in zip(r.ranks, p.energy_per_gpu_j):
            rp = rec.phase(p.name)
            classes = rp.kernel_time_s if rp else None
            share = (classes.get("communication", 0.0) / sum(classes.values())
                     if classes and sum(classes.values()) else None)
            t.add_row(p.name, str(rec.rank), rec.host, rec.gpu_uuid[:12],
                      fmt(rp.time_s if rp else None, "s"), fmt(e, "J"), fmt(rp.mean_power_w if rp else None, "W"),
                      fmt(None if share is None else 100 * share, "%"))
        t.add_row(p.name, "all", "", f"{len(r.ranks)} GPUs", fmt(p.time_s, "s"), fmt(p.energy_total_j, "J"), "",
                  fmt(None if p.comm_time_share is None else 100 * p.comm_time_share, "%"),
                  end_section=i < len(r.phases) - 1)
    console.print(t)
    console.print(f"per request (batch of {r.batch}): {fmt(r.time_per_request_s, 's')}, "
                  f"{fmt(r.energy_per_request_j, 'J')} over all GPUs")
    for n in r.notes:
        console.print(f"[dim]note: {n}[/]")
