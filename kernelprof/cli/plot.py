"""`kernelprof plot <run>`: PNG figures from saved runs, on any machine (kernelprof.outputs.plot_runs
says which figure each run kind gets)."""
from __future__ import annotations

import argparse
from pathlib import Path

from kernelprof.cli.output import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="PNG of a saved run: power timeline (profile), energy vs time (compare), "
                                    "measured vs estimates (sweep .jsonl)")
    p.add_argument("path", help="a profile, llm, sensor or compare run (.json), or a sweep or workload (.jsonl)")
    p.add_argument("-o", "--out", help="PNG path (default: beside the run, .png)")
    p.add_argument("--depth", type=int, default=0, help="profile: which nesting level of phases to shade (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.outputs.plot_runs import plot_run

    for written in plot_run(args.path, args.out, depth=args.depth):
        console.print(f"wrote {written}")
    return 0
