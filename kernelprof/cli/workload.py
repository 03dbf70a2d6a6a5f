"""`kernelprof workload --trace azure-conv|azure-code|burstgpt-fitted|FILE.csv`: the paper's binned energy."""
from __future__ import annotations

import argparse

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernelprof.cli.output import console, print_json
from kernelprof.cli.workload_view import render_summary
from kernelprof.outputs.runfile import to_jsonable


def register(sub: argparse._SubParsersAction) -> None:
    from kernelprof.methods.llm.config import CONFIGS

    p = sub.add_parser("workload", help="binned workload energy (Fernandez et al. 2025) on a Llama-shaped model")
    p.add_argument("--trace", required=True, help="azure-code, azure-conv, burstgpt-fitted, or a CSV of input_len,output_len")
    p.add_argument("--model", default="llama-3.1-8b", choices=sorted(CONFIGS), help="model shape (random weights)")
    p.add_argument("--mode", default="optimized", choices=["optimized", "eager"], help="optimized (Triton kernels, CUDA-graph decode) or eager")
    p.add_argument("--max-batch", type=int, default=64, help="cap on the batch per bin (default: largest that fits, up to 64)")
    p.add_argument("--bins-only", action="store_true", help="print the binning (no GPU needed) and exit")
    p.add_argument("-o", "--out", help="per-bin JSONL (default runs/workload-<trace>-<model>.jsonl)")
    p.add_argument("--resume", action="store_true", help="skip bins already measured in --out")
    p.add_argument("--new-file", action="store_true", help="move an existing --out aside and start a new file")
    p.add_argument("--profiles", help="folder for each bin's profile run (default: <out without .jsonl>.bins); "
                                      "the workload's Perfetto trace is built from them")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.errors import points_failed_exit
    from kernelprof.methods.workload_run import measure_bins, missing_profiles, save_workload, workload_paths
    from kernelprof.methods.workloads import bin_workload, load_workload

    w = load_workload(args.trace)
    binning = bin_workload(w)
    if args.bins_only:
        if args.json:
            print_json(to_jsonable(binning))
            return 0
        t = Table(title=f"{w.name}: {w.requests} requests, {binning.dropped} dropped ({w.source})")
        for col in ("input bin", "output bin", "requests"):
            t.add_column(col, justify="right")
        for b in binning.bins:
            t.add_row(str(b.input_bin), str(b.output_bin), str(b.requests))
        console.print(t)
        return 0
    if not 1 <= args.max_batch <= 4096:
        from kernelprof.errors import UsageError

        raise UsageError(f"--max-batch must be in 1..4096, got {args.max_batch}")
    paths = workload_paths(args.trace, args.model, args.out, args.profiles)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task(f"{paths.name} bins", total=len(binning.bins))
        summary = measure_bins(args.trace, args.model, paths, mode=args.mode, max_batch=args.max_batch,
                               resume=args.resume, new_file=args.new_file, device=args.device,
                               on_bin=lambda b, rec: progress.update(
                                   task, advance=1, description=f"bin {b.input_bin}/{b.output_bin} [{rec['status']}]"))
    trace_path = save_workload(summary, binning, paths, model=args.model)
    if args.json:
        print_json(to_jsonable(summary))
        return points_failed_exit(len(summary.bins_failed), len(binning.bins), "bins")
    from kernelprof.gpu.devices import gpu_facts
    from kernelprof.methods.llm.binned import read_bins

    render_summary(to_jsonable(summary), list(read_bins(paths.bins).values()), gpu_name=gpu_facts(args.device).name)
    console.print(f"per-bin results in {paths.bins}, their profile runs in {paths.profiles_dir}/; summary run "
                  f"{paths.run_file}" + (f"; Perfetto trace {trace_path}" if trace_path else ""))
    missing = missing_profiles(binning, paths)
    if missing and trace_path:
        console.print(f"[yellow]the trace leaves out {len(missing)} of {len(binning.bins)} bins: their profile runs "
                      f"are not in {paths.profiles_dir}/ (measured by an earlier process)[/]")
    return points_failed_exit(len(summary.bins_failed), len(binning.bins), "bins")
