"""`kernelprof calibrate`: fit this card's energy model (e_flop per dtype, e_byte, P_static)."""
from __future__ import annotations

import argparse

from rich.table import Table

from kernelprof.cli.output import console, fmt, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit E = e_flop x FLOPs + e_byte x bytes + P_static x time on this GPU (~40 s)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.methods.calibrate import calibrate, calibration_json

    cal = calibrate(args.device, progress=lambda msg: console.print(f"[dim]measuring {msg}[/]") if not args.json else None)
    if args.json:
        print_json(calibration_json(cal))
        return 0
    m = cal.model
    t = Table(title=f"Energy model of {m.gpu_name} (cached for later estimates)")
    t.add_column("coefficient")
    t.add_column("value", justify="right")
    for dtype, e in sorted(m.e_flop_j.items()):
        t.add_row(f"e_flop ({dtype})", fmt(e * 1e12, "pJ/FLOP"))  # not [..]: rich reads that as markup
    t.add_row("e_byte (DRAM, read or write)", fmt(m.e_byte_j * 1e12, "pJ/byte"))
    t.add_row("P_static (idle right after work)", fmt(m.static_power_w, "W"))
    console.print(t)
    p = Table(title="Microbenchmarks")
    for col in ("name", "time/call", "mean W", "energy/call", "flags"):
        p.add_column(col, justify="left" if col in ("name", "flags") else "right")
    for s in cal.points:
        p.add_row(s["name"], fmt(s["time_per_call_s"] * 1e6, "us"), fmt(s["mean_power_w"], "W"),
                  fmt(None if s["energy_per_call_j"] is None else s["energy_per_call_j"] * 1e3, "mJ"),
                  ",".join(s["flags"]))
    console.print(p)
    console.print("[dim]One microbenchmark per coefficient: the fit is exact on them by construction. Its test is how "
                  "well it predicts other kernels: the 'calibrated' estimate of `kernelprof kernel`.[/]")
    for s in cal.skipped:
        console.print(f"[yellow]skipped:[/] {s}")
    return 0
