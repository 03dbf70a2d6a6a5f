"""`kernelprof plot <run>`: PNG figures from saved runs, on any machine.

- a profile (or an llm run's .profile.json): power over time with the phases shaded;
- a compare run: energy per call against time per call, with iso-power lines;
- a sweep's .jsonl: measured energy per call beside each estimate, per point.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from kernelprof.cli.output import console
from kernelprof.errors import RunFileError, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="PNG of a saved run: power timeline (profile), energy vs time (compare), "
                                    "measured vs estimates (sweep .jsonl)")
    p.add_argument("path", help="a profile or compare run (.json), or a sweep (.jsonl)")
    p.add_argument("-o", "--out", help="PNG path (default: beside the run, .png)")
    p.add_argument("--depth", type=int, default=0, help="profile: which nesting level of phases to shade (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.outputs import plots

    path = Path(args.path)
    out = Path(args.out) if args.out else path.with_name(path.name.rsplit(".", 1)[0] + ".png")
    if path.suffix == ".jsonl":
        from kernelprof.methods.sweep import read_done

        rows = []
        for rec in read_done(path).values():
            if rec.get("status") != "ok":
                continue
            k = rec["result"]
            rows.append((f"{rec['variant']} {rec['shape']}", k["measurement"]["energy_per_call_j"],
                         {e["name"]: e["energy_j"] for e in k["estimates"]}))
        if not rows:
            raise UsageError(f"{path} has no finished points to plot")
        plots.measured_vs_estimates_png(rows, out, title=f"measured vs estimated energy per call: {path.name}")
    else:
        from kernelprof.outputs.runfile import load_run

        r = load_run(path)
        if r.kind == "profile":
            from kernelprof.profiler import load_profile_inputs

            trace, timeline, *_ = load_profile_inputs(path)
            gpu = trace.gpus[0].name
            plots.power_timeline_png(trace, timeline, out, title=f"{path.name} on {gpu}", depth=args.depth)
        elif r.kind == "compare":
            from kernelprof.cli.compare import point_of

            p = r.payload
            pts = [point_of(n, k) for n, k in p["variants"].items()]
            plots.energy_vs_time_png(pts, out, title=f"{p['op']} {p['shape']} {p['dtype']} on {p['gpu_name']}")
        else:
            raise RunFileError(f"{path} is a '{r.kind}' run; plot takes profile and compare runs, or a sweep .jsonl")
    console.print(f"wrote {out}")
    return 0
