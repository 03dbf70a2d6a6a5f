"""`kernelprof calibrate`: fit this card's calibrated and activity energy models and validate them."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from kernelprof.cli.output import console, fmt, print_json
from kernelprof.estimates.energy_fit import MODELS
from kernelprof.errors import UsageError

# How each coefficient prints: (scale, unit).
_UNITS = {"e_byte_j": (1e12, "pJ/byte"), "busy_power_w": (1.0, "W"), "tensor_w": (1.0, "W"), "fma_w": (1.0, "W"),
          "dram_w": (1.0, "W"), "e_fma_flop_j": (1e12, "pJ/FLOP"), "e_dram_byte_j": (1e12, "pJ/byte"),
          "e_l2_byte_j": (1e12, "pJ/byte"), "e_smem_wavefront_j": (1e12, "pJ/wavefront")}
_MEANING = {"e_byte_j": "per minimum byte moved", "busy_power_w": "above idle while a kernel is resident",
            "tensor_w": "at 100% of the dense tensor peak", "fma_w": "at 100% of the CUDA-core FP32/FP64 peak",
            "dram_w": "at 100% of the measured copy bandwidth", "e_fma_flop_j": "per FMA-pipe FLOP ncu counted",
            "e_dram_byte_j": "per DRAM byte ncu counted (read + written)", "e_l2_byte_j": "per L2 byte ncu counted",
            "e_smem_wavefront_j": "per shared-memory wavefront ncu counted"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit this GPU's calibrated and activity energy models over 16 "
                                         "microbenchmarks, validated leave-one-out and on 3 subject kernels (~90 s)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    p.add_argument("--max-seconds", type=float, default=8.0, help="wall-time cap per point (default 8 s)")
    p.add_argument("--no-subjects", action="store_true", help="skip the three subject kernels (held-out validation)")
    p.add_argument("--only", help="comma-separated point names to measure (default: all)")
    p.add_argument("--results-dir", help="also write calibration-<gpu>.json there (e.g. benchmarks/results)")
    p.add_argument("--counters", action="store_true",
                   help="also profile each point once under ncu and fit the counters model (FLOPs by pipe, DRAM, L2 "
                        "and shared-memory traffic; about 2 min more; needs ncu and counter permission)")
    p.add_argument("--ncu", help="path of ncu (default: $KERNELPROF_NCU, else ncu on the PATH)")
    p.add_argument("--from", dest="from_file", help="refit and show a saved calibration-<gpu>.json (no GPU)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.methods import calibration_suite as suite

    if args.from_file:
        try:
            doc = json.loads(Path(args.from_file).read_text())
        except (OSError, ValueError) as exc:
            from kernelprof.errors import RunFileError

            raise RunFileError(f"cannot read {args.from_file}: {getattr(exc, 'strerror', None) or exc}") from exc
        cal = suite.refit_results_file(doc)
    else:
        if args.max_seconds <= 0:
            raise UsageError(f"--max-seconds must be positive, got {args.max_seconds}")
        only = tuple(n.strip() for n in args.only.split(",")) if args.only else None
        known = {p.name for p in suite.MICROBENCHMARKS + suite.SUBJECTS}
        if only and set(only) - known:
            raise UsageError(f"unknown point(s) {sorted(set(only) - known)}; known: {sorted(known)}")
        say = None if args.json else (lambda msg: console.print(f"[dim]measuring {msg}[/]"))
        cal = suite.calibrate(args.device, max_wall_s=args.max_seconds, subjects=not args.no_subjects,
                              results_dir=args.results_dir, only=only, progress=say, counters=args.counters,
                              ncu=args.ncu)
    if args.json:
        print_json({"fit": cal.fit.to_json(), "measurements": list(cal.measurements), "results": cal.results_path})
        return 0
    render_calibration(cal.fit, cal.measurements, cal.counter_notes)
    if cal.results_path:
        console.print(f"wrote {cal.results_path}")
    return 0


def _coef_row(t: Table, name: str, value: float, se: float | None, bound: bool) -> None:
    if name.startswith("e_flop_j["):
        scale, unit, meaning = 1e12, "pJ/FLOP", f"per {name[9:-1]} FLOP"
    elif name.startswith("e_tensor_flop_j["):
        scale, unit, meaning = 1e12, "pJ/FLOP", f"per {name[16:-1]} tensor-pipe FLOP ncu counted"
    else:
        (scale, unit), meaning = _UNITS.get(name, (1.0, "")), _MEANING.get(name, "")
    se_text = "held at 0 by its bound" if bound else ("-" if se is None else f"± {fmt(se * scale, '', digits=2)}")
    t.add_row(escape(name), fmt(value * scale, unit), se_text, meaning)  # escape: rich reads [bf16] as markup


def render_calibration(fit, measurements=(), counter_notes=()) -> None:
    """Both fits' coefficients with standard errors, then every kernel's measured / predicted held out."""
    for label, lf, formula in (
            ("calibrated", fit.calibrated, "E = P_idle x t + sum e_flop[dtype] x FLOPs + e_byte x bytes + busy_w x t"),
            ("activity", fit.activity, "E = P_idle x t + (tensor_w x tensor + fma_w x FMA + dram_w x DRAM + busy_w) x t"),
            ("counters", fit.counters, "E = P_idle x t + sum e x (tensor and FMA FLOPs, DRAM, L2, shared-memory "
                                       "traffic, as ncu counted) + busy_w x t")):
        if lf is None:
            continue
        t = Table(title=escape(f"{label} model of {fit.gpu_name}: {formula}"))
        for col in ("coefficient", "value", "standard error", "meaning"):
            t.add_column(col, justify="right" if col in ("value", "standard error") else "left")
        for k in lf.features:
            _coef_row(t, k, lf.coefficients[k], lf.standard_errors.get(k), k in lf.at_bound)
        console.print(t)
        console.print(f"[dim]{len(lf.points)} points, {lf.dof} degrees of freedom, in-sample rms relative residual "
                      f"{100 * lf.rms_rel_residual:.1f}%; weighting {lf.weighting}[/]")
    models = [m for m in MODELS if fit.model(m) is not None]
    h = Table(title="Held out: measured / predicted (leave-one-out for microbenchmarks; subjects never fitted)")
    cols = ["kernel", "kind", "held out", "measured"] + [c for m in models for c in (m, f"measured / {m}")] + ["note"]
    for col in cols:
        h.add_column(col, justify="right" if col.startswith(("measured",) + tuple(models)) else "left")
    target = 10.0
    for r in fit.held_out():
        def ratio(x):
            if x is None:
                return "-"
            text = fmt(x, "x", digits=3)
            return text if abs(x - 1) * 100 <= target else f"[red]{text}[/]"
        preds = []
        for m in models:
            p = r.predicted_j(m)
            preds += [fmt(None if p is None else p * 1e3, "mJ"), ratio(r.ratio(m))]
        h.add_row(r.name, r.kind, r.how.replace("_", " "), fmt(r.measured_j * 1e3, "mJ"), *preds, r.note)
    console.print(h)
    for model in models:
        worst = fit.worst_held_out_error_pct(model)
        if worst is not None:
            verdict = "meets" if worst <= target else "misses"
            console.print(f"{model}: worst held-out error {worst:.1f}% ({verdict} the {target:.0f}% target)")
    if measurements:
        flagged = [f"{m['name']} ({','.join(m['flags'])})" for m in measurements if m.get("flags")]
        if flagged:
            console.print(f"[yellow]flagged measurements:[/] {'; '.join(flagged)}")
    for s in fit.skipped:
        console.print(f"[yellow]skipped:[/] {s}")
    for s in counter_notes:
        console.print(f"[yellow]counters:[/] {escape(s)}")
    console.print(f"[dim]source: {fit.source}[/]")
