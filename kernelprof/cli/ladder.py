"""`kernelprof ladder [--rungs a,b] [--batch 8 --input 512 --output 128 --repeats 3]`: which optimization
saves joules, and why; `--workload azure-conv` runs the first and last rung over a binned trace."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from kernelprof.cli.output import console, fmt, print_json
from kernelprof.cli.ladder_view import render_ladder
from kernelprof.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    from kernelprof.methods.ladder import RUNG_NAMES
    from kernelprof.methods.llm.config import CONFIGS

    p = sub.add_parser("ladder", help="the optimization ladder: J per request rung by rung, split into time and power")
    p.add_argument("--model", default="llama-3.1-8b", choices=sorted(CONFIGS), help="model shape (random weights)")
    p.add_argument("--rungs", help=f"comma-separated subset, in ladder order (default all): {', '.join(RUNG_NAMES)}")
    p.add_argument("--batch", type=int, default=8, help="requests per generate call")
    p.add_argument("--input-len", type=int, default=512, help="prompt tokens per request")
    p.add_argument("--output-len", type=int, default=128, help="generated tokens per request (fixed, no EOS)")
    p.add_argument("--repeats", type=int, default=3, help="measurements per rung (>= 2 gives confidence intervals)")
    p.add_argument("--min-inrun-s", type=float, default=1.0, help="in-run time per repeat")
    p.add_argument("--workload", help="azure-conv, azure-code or burstgpt-fitted: first and last kernelprof rung "
                                      "over the binned trace instead of the single-batch ladder")
    p.add_argument("--only", choices=["first", "last"], help="with --workload: measure one rung (split a trace over "
                                                              "device calls; the other is read from its file)")
    p.add_argument("--other-gpu", action="store_true", help="with --workload: continue a rung's file measured on "
                                                             "another card of the same driver (notes name each card)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("-o", "--out", help="JSONL of finished rungs (default runs/ladder-<model>.jsonl); rerun resumes")
    p.add_argument("--fresh", action="store_true",
                   help="move an existing --out aside (never deleted) and start again instead of resuming")
    p.add_argument("--from", dest="from_file", metavar="PATH",
                   help="no measurement: print, plot (--plot) or write results (--results) from a saved ladder file "
                        "(with --workload: the folder of its two rung files)")
    p.add_argument("--gpu-name", help="with --from --results on a file that records no GPU (legacy format): the GPU "
                                      "that measured it, stated by you and labelled so in the results")
    p.add_argument("--measured-revision", help="with --from on a legacy file: the git revision that measured it "
                                               "(stated by you; new files record it per rung)")
    p.add_argument("--results", action="store_true", help="also write benchmarks/results/ladder-<gpu>.json")
    p.add_argument("--plot", help="PNG path: energy vs time per rung with iso-power lines (with --workload: the "
                                  "saving per input x output bin)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.methods.ladder import select_rungs
    from kernelprof.methods.ladder_run import LadderConfig, run_ladder

    if min(args.batch, args.input_len) < 1 or args.output_len < 2 or args.repeats < 1:
        raise UsageError(f"--batch, --input and --repeats must be >= 1 and --output >= 2, got "
                         f"{args.batch}, {args.input_len}, {args.repeats}, {args.output_len}")
    rungs = select_rungs(args.rungs)
    if args.workload:
        return _workload(args)
    if args.from_file:
        return _from_file(args)
    cfg = LadderConfig(args.model, args.batch, args.input_len, args.output_len, args.repeats, args.min_inrun_s, args.device)
    out = Path(args.out or f"runs/ladder-{args.model}.jsonl")
    results = run_ladder(cfg, rungs, out=out, resume=not args.fresh,
                         on_rung=None if args.json else lambda r: console.print(f"[dim]rung {r.name} done[/]"))
    if args.results:
        from kernelprof.methods.ladder_workload import write_ladder_results
        console.print(f"wrote {write_ladder_results(results, [], device=args.device, merge=True)}")
    if args.plot:
        from kernelprof.outputs.plots import ladder_png
        console.print(f"wrote {ladder_png(results, args.plot, title=f'{args.model} ladder, batch {args.batch}')}")
    if args.json:
        print_json([r.to_json() for r in results])
    else:
        render_ladder(results)
    return 0


def _from_file(args: argparse.Namespace) -> int:
    from kernelprof.methods.ladder_store import saved_ladder

    saved = saved_ladder(args.from_file, gpu_name=args.gpu_name, need_device=args.results,
                         revision=args.measured_revision)
    for w in saved.warnings:
        console.print(f"[yellow]note: {w}[/]")
    if args.results:
        from kernelprof.methods.ladder_workload import write_ladder_results
        console.print(f"wrote {write_ladder_results(saved.rungs, [], device_info=saved.device, merge=True, measured_at=saved.measured_at)}")
    if args.plot:
        from kernelprof.outputs.plots import ladder_png
        r0 = saved.rungs[0]
        console.print(f"wrote {ladder_png(saved.rungs, args.plot, title=f'{r0.model} ladder, batch {r0.batch}')}")
    if args.json:
        print_json([r.to_json() for r in saved.rungs])
    else:
        render_ladder(saved.rungs)
    return 0


def _workload(args: argparse.Namespace) -> int:
    from kernelprof.methods.ladder_workload import (revisions_in, run_workload_ladder, saved_workload_ladder,
                                                    write_ladder_results)

    if args.from_file and (args.only or args.out):
        raise UsageError("--from reads a finished workload ladder folder: --only and --out measure, drop them")
    if args.from_file:
        w = saved_workload_ladder(args.workload, args.model, out_dir=Path(args.from_file))
    else:
        w = run_workload_ladder(args.workload, args.model, out_dir=Path(args.out or f"runs/ladder-{args.workload}"),
                                device=args.device, only=args.only, other_gpu=args.other_gpu)
    if args.results and args.from_file:
        if not args.gpu_name:
            raise UsageError("--results with --from on a workload folder needs --gpu-name: bin files record the "
                             "GPU's uuid and driver, not its name")
        dev = {"name": args.gpu_name, "source": "named by the user (--gpu-name); uuids in the workload notes"}
        at = {"git_revision": revisions_in(Path(args.from_file)), "note": f"written from the saved workload folder {args.from_file} on a machine "
                                            "that measured nothing; each rung's GPU and revision are in its notes"}
        console.print(f"wrote {write_ladder_results([], [w], device_info=dev, merge=True, measured_at=at)}")
    elif args.results:
        console.print(f"wrote {write_ladder_results([], [w], device=args.device, merge=True)}")
    if args.json:
        print_json(w.to_json())
        return 0
    console.print(f"{w.workload}: first rung {fmt(w.first_energy_j, 'J')} ({fmt(w.first_ratio, 'x')} the TDP/FLOP "
                  f"estimate), last rung {fmt(w.last_energy_j, 'J')} ({fmt(w.last_ratio, 'x')}): saving "
                  f"{fmt(w.saving_pct, '%')}" + (f" ({w.change})" if w.change else "")
                  + (f" [yellow]PARTIAL: over {w.bins_compared} of {w.bins_in_trace} bins[/]" if w.partial else ""))
    if w.first_prefill_j and w.last_prefill_j and w.first_decode_j and w.last_decode_j:
        console.print(f"  prefill {fmt(w.first_prefill_j, 'J')} -> {fmt(w.last_prefill_j, 'J')}, decode "
                      f"{fmt(w.first_decode_j, 'J')} -> {fmt(w.last_decode_j, 'J')}; GPU time "
                      f"{fmt(w.first_time_s, 's')} -> {fmt(w.last_time_s, 's')}")
    t = Table(title="saving per bin (input x output)")
    for col in ("bin", "requests", "first J/request", "last J/request", "saving"):
        t.add_column(col, justify="right")
    for b in w.bins:
        t.add_row(b.key, str(b.requests), fmt(b.first_j_per_request, "J"), fmt(b.last_j_per_request, "J"),
                  fmt(b.saving_pct, "%"))
    console.print(t)
    if args.plot:
        from kernelprof.outputs.plots import saving_heatmap_png

        console.print(f"wrote {saving_heatmap_png(w.bins, args.plot, title=f'{w.workload}, {w.model}: kp-eager -> kp-triton')}")
    for n in w.notes:
        console.print(f"[dim]note: {n}[/]")
    return 0
