"""`kernelprof compare <op> --variants a,b --shape ...`: which variant saves energy, which only time."""
from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from kernelprof.cli.kernel import add_measure_options, config_from_args
from kernelprof.cli.output import console, fmt, print_json
from kernelprof.errors import points_failed_exit
from kernelprof.methods.compare import Comparison
# point_of re-exported: it lived here before the workflow moved to the library.
from kernelprof.methods.compare_variants import compare_variants, point_of, save_compare_run  # noqa: F401


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare variants of one op: energy, time and power ratios with a verdict")
    p.add_argument("op", nargs="?", help="gemm, attention or decode")
    p.add_argument("--fn", help="your own kernel instead: MODULE:FUNCTION (kernelprof.methods.user_case), variant=...")
    p.add_argument("--variants", help="comma-separated (default: all of the op's variants)")
    p.add_argument("--baseline", help="variant the others are compared with (default: the first)")
    p.add_argument("--shape", help="shape to measure at (default: the op's default shape)")
    p.add_argument("--from-sweep", dest="from_sweep", help="take the points from a sweep's JSONL instead of measuring")
    add_measure_options(p)
    p.add_argument("-o", "--out", help="run file (default runs/compare-<op>-<time>.json); the plot goes beside it")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = compare_variants(
        args.op, args.variants, fn=args.fn, shape=args.shape, dtype=args.dtype, baseline=args.baseline,
        config=lambda: config_from_args(args), device=args.device, seed=args.seed, paper_convention=args.paper_peak,
        from_sweep=args.from_sweep, on_variant=lambda op, v, shape: console.print(f"measuring {op}/{v} at {shape} ..."),
        on_failure=lambda v, err: console.print(f"[red]{v} failed:[/] {err}"))
    result, out, png = save_compare_run(result, args.out)
    payload = result.to_json()
    if args.json:
        print_json(payload)
    else:
        render_compare(payload)
        console.print(f"saved {out} and {png}")
    return points_failed_exit(len(result.failed), len(result.failed) + len(result.variants), "variants")


def render_run(run) -> None:
    render_compare(run.payload)


def render_compare(payload: dict[str, Any]) -> None:
    t = Table(title=f"{payload['op']} {payload['shape']} {payload['dtype']} on {payload['gpu_name']}")
    for col in ("variant", "time/call", "mean W", "energy/call", "±", "TFLOP/s", "flags"):
        t.add_column(col, justify="left" if col in ("variant", "flags") else "right")
    for name, k in payload["variants"].items():
        m = k["measurement"]
        e = m["energy_per_call_j"]
        t.add_row(name, fmt(m["time_per_call_s"] * 1e6, "us"), fmt(m["mean_power_w"], "W"),
                  fmt(None if e is None else e * 1e3, "mJ"),
                  fmt(100 * m["energy_ci_j"] / e, "%", digits=2) if e and m["energy_ci_j"] is not None else "-",
                  fmt(m["achieved_flop_s"] / 1e12), ",".join(f["code"] for f in m["flags"]))
    for name, err in payload.get("failed", {}).items():
        t.add_row(name, "[red]failed[/]", "", "", "", "", err[:60])

    console.print(t)
    render_estimates(payload["variants"])
    c = Table(title=f"Against {payload['baseline']} (ratios candidate / baseline, 95% CI)")
    for col in ("candidate", "energy ratio", "time ratio", "power ratio", "verdict", "why"):
        c.add_column(col, justify="right" if "ratio" in col else "left")
    for d in payload["comparisons"]:
        comp = Comparison(**d)
        c.add_row(comp.candidate, f"{comp.energy_ratio:.3f} ± {comp.energy_ratio_ci:.3f}",
                  f"{comp.time_ratio:.3f} ± {comp.time_ratio_ci:.3f}", f"{comp.power_ratio:.3f}",
                  comp.verdict, comp.explanation)
    console.print(c)


def render_estimates(variants: dict[str, Any]) -> None:
    """measured / estimate per variant for every estimate (the paper's labelled with its peak convention)."""
    names: list[str] = []
    for k in variants.values():
        names += [e["name"] for e in k.get("estimates", []) if e["name"] not in names]
    if not names:
        return
    conv = {e["name"]: e.get("convention") for k in variants.values() for e in k.get("estimates", [])}
    t = Table(title="measured / estimate (per call)")
    t.add_column("variant")
    for n in names:
        t.add_column(f"{n} ({conv[n]} peak)" if n == "paper" and conv.get(n) else n, justify="right")
    for name, k in variants.items():
        by = {e["name"]: e for e in k.get("estimates", [])}
        t.add_row(name, *(fmt(by[n]["ratio"], "x") if n in by else "-" for n in names))
    console.print(t)
