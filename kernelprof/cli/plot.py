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
    p.add_argument("--out", help="PNG path (default: beside the run, .png)")
    p.add_argument("--depth", type=int, default=0, help="profile: which nesting level of phases to shade (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.outputs.runfile import arrays_path
    from kernelprof.outputs.safe_paths import refuse_overwriting_inputs

    path = Path(args.path)
    out = Path(args.out) if args.out else path.with_name(path.name.rsplit(".", 1)[0] + ".png")
    refuse_overwriting_inputs(out, [path, arrays_path(path)])  # what was asked for, before the suffix
    if out.suffix.lower() != ".png":
        out = out.with_name(out.name + ".png")  # the PNG's real name is the one printed below
    refuse_overwriting_inputs(out, [path, arrays_path(path)])
    try:
        _plot(path, out, args)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        if isinstance(exc, (RunFileError, UsageError)):
            raise
        raise RunFileError(f"{path} lacks or misstates what a plot reads ({type(exc).__name__}: {exc}); "
                           "the file is corrupt or from an incompatible kernelprof") from exc
    console.print(f"wrote {out}")
    return 0


def _plot(path: Path, out: Path, args: argparse.Namespace) -> None:
    from kernelprof.outputs import plots

    if path.suffix == ".jsonl":
        from kernelprof.cli.workload import is_workload_jsonl
        from kernelprof.methods.sweep import read_done

        if is_workload_jsonl(path):
            raise RunFileError(f"{path} is a workload's per-bin JSONL; plot takes a sweep's .jsonl "
                               "(`kernelprof report` prints the bins)")

        rows = []
        for rec in read_done(path).values():
            if rec.get("status") != "ok":
                continue
            k = rec["result"]
            rows.append((f"{rec['variant']} {rec['shape']}", k["measurement"]["energy_per_call_j"],
                         {e["name"]: e["energy_j"] for e in k["estimates"]}))
        if not rows:
            raise RunFileError(f"{path} has no finished points to plot")
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
