"""`kernelprof plot <run>`: PNG figures from saved runs, on any machine (kernelprof.outputs.plot_runs
says which figure each run kind gets)."""
from __future__ import annotations

import argparse
from pathlib import Path

from kernelprof.cli.output import console
from kernelprof.errors import KernelprofError, RunFileError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="PNG of a saved run: power timeline (profile), energy vs time (compare), "
                                    "measured vs estimates (sweep .jsonl)")
    p.add_argument("path", help="a profile, llm, sensor or compare run (.json), or a sweep or workload (.jsonl)")
    p.add_argument("-o", "--out", help="PNG path (default: beside the run, .png)")
    p.add_argument("--depth", type=int, default=0, help="profile: which nesting level of phases to shade (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.outputs.plot_runs import plot_run

    try:
        written = list(plot_run(args.path, args.out, depth=args.depth))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        if isinstance(exc, KernelprofError):
            raise
        raise RunFileError(f"{args.path} lacks or misstates what a plot reads ({type(exc).__name__}: {exc}); "
                           "the file is corrupt or from an incompatible kernelprof") from exc
    for path in written:
        console.print(f"wrote {path}")
    return 0
