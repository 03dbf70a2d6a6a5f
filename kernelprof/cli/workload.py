"""`kernelprof workload --trace azure-conv|azure-code|burstgpt-fitted|FILE.csv`: the paper's binned energy."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernelprof.cli.output import console, fmt, print_json
from kernelprof.outputs.runfile import save_run, to_jsonable


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
    from kernelprof.methods.llm.binned import read_bins, run_binned, write_workload_trace

    name = Path(args.trace).stem if args.trace.endswith(".csv") else args.trace
    out = Path(args.out) if args.out else Path("runs") / f"workload-{name}-{args.model}.jsonl"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task(f"{name} bins", total=len(binning.bins))
        profiles_dir = Path(args.profiles) if args.profiles else Path(f"{out.parent / out.stem}.bins")
        summary = run_binned(args.trace, args.model, mode=args.mode, max_batch=args.max_batch, out=out,
                             resume=args.resume, new_file=args.new_file, device=args.device, profiles_dir=profiles_dir,
                             on_bin=lambda b, rec: progress.update(
                                 task, advance=1, description=f"bin {b.input_bin}/{b.output_bin} [{rec['status']}]"))
    run_path = out.with_suffix(".json")
    save_run(run_path, "workload", {"summary": to_jsonable(summary), "bins_file": out.name})
    trace_path = write_workload_trace(
        [(f"{b.input_bin}/{b.output_bin}", profiles_dir / f"bin-{b.input_bin}-{b.output_bin}.profile.json")
         for b in binning.bins], out.with_suffix(".trace.json"), title=f"{name} on {args.model}")
    from kernelprof.errors import points_failed_exit

    if args.json:
        print_json(to_jsonable(summary))
        return points_failed_exit(len(summary.bins_failed), len(binning.bins), "bins")
    from kernelprof.gpu.devices import gpu_facts

    render_summary(to_jsonable(summary), list(read_bins(out).values()), gpu_name=gpu_facts(args.device).name)
    console.print(f"per-bin results in {out}, their profile runs in {profiles_dir}/; summary run {run_path}"
                  + (f"; Perfetto trace {trace_path}" if trace_path else ""))
    missing = [b for b in binning.bins
               if not (profiles_dir / f"bin-{b.input_bin}-{b.output_bin}.profile.json").exists()]
    if missing and trace_path:
        console.print(f"[yellow]the trace leaves out {len(missing)} of {len(binning.bins)} bins: their profile runs "
                      f"are not in {profiles_dir}/ (measured by an earlier process)[/]")
    return points_failed_exit(len(summary.bins_failed), len(binning.bins), "bins")


def render_run(run) -> None:
    recs = None
    bins_file = run.payload.get("bins_file")
    if run.path is not None and bins_file and (run.path.parent / bins_file).exists():
        from kernelprof.methods.llm.binned import read_bins

        recs = list(read_bins(run.path.parent / bins_file).values())
    gpus = (run.environment or {}).get("gpus") or []
    render_summary(run.payload["summary"], recs, gpu_name=gpus[0].get("name") if gpus else None)


def is_workload_jsonl(path: Path) -> bool:
    """A workload's per-bin JSONL (records with input_bin/output_bin), not a sweep's."""
    from kernelprof.outputs.jsonl_store import read_store

    first = next(iter(read_store(path).records.values()), None)
    return first is not None and "input_bin" in first


def render_workload_jsonl(path: Path, *, as_json: bool = False) -> int:
    """`kernelprof report bins.jsonl`: the per-bin table and the totals it implies."""
    from kernelprof.methods.llm.binned import bin_totals, read_bins

    recs = list(read_bins(path).values())
    if not recs:
        from kernelprof.errors import RunFileError

        raise RunFileError(f"{path} holds no workload bins")
    if as_json:
        print_json(recs)
        return 0
    render_bins(recs)
    tot = bin_totals(recs)
    if tot.prefill_energy_j is not None and tot.decode_energy_j is not None:
        e = tot.prefill_energy_j + tot.decode_energy_j
        console.print(f"{len(recs)} bins: {fmt(e, 'J')} for {tot.requests} requests, prefill "
                      f"{100 * tot.prefill_energy_j / e:.1f}%; the summary run beside it has the paper's ratio")
    return 0


def _paper_per_batch_j(rec: dict, gpu_name: str | None) -> float | None:
    """TDP / headline peak x the record's FLOPs (the paper's convention) from the datasheet of the GPU
    it ran on; else the record's own figure if it says it used that convention. Records written
    before the convention was recorded used the dense peak: recomputed, not mixed in."""
    from kernelprof.estimates.energy import paper_estimate_j
    from kernelprof.estimates.datasheets import datasheet_for

    sheet = datasheet_for(gpu_name) if gpu_name else None
    if sheet is not None and rec.get("flops_per_batch"):
        return paper_estimate_j(rec["flops_per_batch"], "bf16", sheet)
    if rec.get("paper_peak_convention") == "headline":
        return rec.get("paper_estimate_per_batch_j")
    return None


def render_bins(recs: list[dict], gpu_name: str | None = None) -> None:
    t = Table(title="per bin (one measured batch each)")
    for col in ("input", "output", "requests", "batch", "J / batch", "J / request", "prefill share", "s / batch",
                "measured / paper", "status"):
        t.add_column(col, justify="right")
    for r in sorted(recs, key=lambda r: (r["input_bin"], r["output_bin"])):
        if r.get("status") != "ok":
            t.add_row(str(r["input_bin"]), str(r["output_bin"]), str(r["requests"]), str(r.get("batch", "-")),
                      "-", "-", "-", "-", "-", f"[red]{r.get('error', r.get('status'))}[/]")
            continue
        ph = r.get("phases") or {}
        e_p = (ph.get("prefill") or {}).get("energy_j")
        share = e_p / r["energy_per_batch_j"] if e_p is not None and r["energy_per_batch_j"] else None
        paper = _paper_per_batch_j(r, gpu_name)
        t.add_row(str(r["input_bin"]), str(r["output_bin"]), str(r["requests"]), str(r["batch"]),
                  fmt(r["energy_per_batch_j"], "J"), fmt(r["energy_per_batch_j"] / r["batch"], "J"),
                  fmt(None if share is None else 100 * share, "%"), fmt(r["time_per_batch_s"], "s"),
                  fmt(r["energy_per_batch_j"] / paper if paper else None, "x"), "ok")
    console.print(t)


def render_summary(s: dict, recs: list[dict] | None = None, gpu_name: str | None = None) -> None:
    if recs:
        render_bins(recs, gpu_name)
    console.print(f"[bold]{s['workload']}[/] on {s['model']} ({s['mode']}): {s['requests']} requests, {s['dropped']} "
                  f"dropped, {s['bins_measured']} bins measured, {len(s['bins_failed'])} failed")
    console.print(f"measured {fmt(s['energy_j'], 'J')} vs paper estimate "
                  f"(TDP / {s.get('paper_peak_convention', 'dense')} peak x FLOPs) "
                  f"{fmt(s['paper_estimate_j'], 'J')}: "
                  f"{fmt(s['ratio'], 'x')} (paper: unoptimized PyTorch 2.0-6.1x, vLLM 1.27-1.64x, on A6000)")
    prefill, decode = s.get("prefill_energy_j"), s.get("decode_energy_j")
    gpu_time = s.get("gpu_time_s")
    if prefill is None and recs:  # runs saved before the summary carried the split
        from kernelprof.methods.llm.binned import bin_totals

        tot = bin_totals(recs)
        prefill, decode, gpu_time = tot.prefill_energy_j, tot.decode_energy_j, tot.gpu_time_s
    if prefill is not None and decode is not None and prefill + decode > 0:
        console.print(f"prefill {fmt(prefill, 'J')} ({100 * prefill / (prefill + decode):.1f}%), decode "
                      f"{fmt(decode, 'J')} ({100 * decode / (prefill + decode):.1f}%); the batches take "
                      f"{fmt(gpu_time, 's')} of GPU time")
    if s.get("wall_s") is not None:
        console.print(f"this run took {fmt(s['wall_s'], 's')} of wall time")
    for n in s["notes"]:
        console.print(f"[dim]note: {n}[/]")
