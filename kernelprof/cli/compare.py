"""`kernelprof compare <op> --variants a,b --shape ...`: which variant saves energy, which only time."""
from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import Any

from rich.table import Table

from kernelprof.cli.kernel import add_measure_options, config_from_args
from kernelprof.cli.output import console, fmt, print_json
from kernelprof.methods.compare import Comparison, VariantPoint, compare_all
from kernelprof.errors import BUG_HINT, InternalError, UsageError, is_internal_bug, points_failed_exit
from kernelprof.outputs.runfile import save_run, to_jsonable


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


def point_of(name: str, k: dict[str, Any]) -> VariantPoint:
    m = k["measurement"]
    if m["energy_per_call_j"] is None:
        raise UsageError(f"variant {name} has no energy measurement")
    return VariantPoint(name, m["energy_per_call_j"], m["energy_ci_j"] or 0.0, m["time_per_call_s"], m["time_ci_s"] or 0.0)


def run(args: argparse.Namespace) -> int:
    from kernels import get_op

    from kernelprof.methods.user_case import user_op

    op = user_op(args.fn, args.variants, probe=not args.from_sweep) if args.fn else get_op(args.op or "")
    variants = args.variants.split(",") if args.variants else list(op.variants)
    bad = [v for v in variants if v not in op.variants]
    if bad:
        raise UsageError(f"unknown variant(s) {bad} for {op.name}; available: {sorted(op.variants)}")
    if len(variants) < 2:
        raise UsageError("compare needs at least two variants")
    shape = str(op.parse_shape(args.shape if args.shape is not None else op.default_shape))
    from kernelprof.validate import check_dtype

    dtype = check_dtype(args.dtype, op.name)
    cfg = None if args.from_sweep else config_from_args(args)
    if args.baseline and args.baseline not in variants:
        raise UsageError(f"baseline {args.baseline!r} is not among the variants {variants}")
    measured: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    if args.from_sweep:
        from kernelprof.methods.sweep import read_done

        for rec in read_done(Path(args.from_sweep)).values():
            if rec.get("op") == op.name and rec.get("variant") in variants and rec.get("status") == "ok" \
                    and rec.get("dtype") == dtype and str(op.parse_shape(rec["shape"])) == shape:
                measured[rec["variant"]] = rec["result"]
    else:
        from kernelprof.gpu.devices import require_gpu
        from kernelprof.methods.kernel_energy import measure_op

        require_gpu("kernelprof compare")
        for v in variants:
            console.print(f"measuring {op.name}/{v} at {shape} ...")
            try:
                measured[v] = measure_op(op.name, v, shape, args.dtype, device=args.device, config=cfg,
                                         seed=args.seed, paper_convention=args.paper_peak).to_json()
            except Exception as exc:  # noqa: BLE001 - one variant failing (OOM, unsupported) must not lose the rest
                if is_internal_bug(exc):  # kernelprof's own bug is not the variant's failure
                    raise InternalError(f"variant {v} hit {type(exc).__name__}: {exc}; {BUG_HINT}") from exc
                failed[v] = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]{v} failed:[/] {failed[v]}")
    names = [v for v in variants if v in measured]
    if len(names) < 2:
        raise UsageError(f"fewer than two variants measured at {shape} ({names}); nothing to compare")
    baseline = args.baseline or names[0]
    if baseline not in names:
        raise UsageError(f"baseline {baseline!r} was not measured; measured: {names}")
    points = [point_of(v, measured[v]) for v in names]
    comps = compare_all(points, baseline=baseline)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"compare-{op.name}-{stamp}.json"
    png = out.with_suffix(".png")
    from kernelprof.outputs.plots import energy_vs_time_png

    gpu = next(iter(measured.values()))["gpu_name"]
    energy_vs_time_png(points, png, title=f"{op.name} {shape} {args.dtype} on {gpu}")
    payload = {"op": op.name, "shape": shape, "dtype": args.dtype, "baseline": baseline, "gpu_name": gpu,
               "variants": measured, "failed": failed, "comparisons": [to_jsonable(c) for c in comps],
               "plot": png.name}
    save_run(out, "compare", payload)
    if args.json:
        print_json(payload)
    else:
        render_compare(payload)
        console.print(f"saved {out} and {png}")
    return points_failed_exit(len(failed), len(variants), "variants")


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
