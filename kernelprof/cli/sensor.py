"""`kernelprof sensor`: characterize this GPU's power sources and save its sensor profile."""
from __future__ import annotations

import argparse
import json
import sys

from kernelprof.errors import UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sensor", help="measure the GPU's power sensors (period, window, lag, idle, counter agreement)",
        description="Drive square-wave and step loads (~25 s) and measure how each NVML power source "
                    "behaves; saves a sensor profile that energy attribution uses.")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("--gpu", dest="device", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    p.add_argument("--segment-seconds", type=float, default=3.0, help="length of each duty-cycle segment")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-o", "--out", help="also save a run file (kind 'sensor') with the trace, here")
    p.add_argument("--no-save", action="store_true", help="do not update the cached sensor profile")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.gpu.devices import require_gpu

    if args.segment_seconds <= 0.5 or args.segment_seconds > 20:
        raise UsageError(f"--segment-seconds must be in (0.5, 20], got {args.segment_seconds}")
    require_gpu("kernelprof sensor")
    from rich.console import Console

    from kernelprof.outputs.runfile import to_jsonable
    from kernelprof.methods.sensor import characterize, save_profile_for

    err = Console(stderr=True)
    with err.status("characterizing power sensors") as status:
        report, trace, timeline = characterize(args.device, segment_s=args.segment_seconds,
                                               progress=lambda s: status.update(f"sensor: {s}"), save=False)
    saved = None if args.no_save else save_profile_for(report)
    if args.out:
        from kernelprof.outputs.runfile import save_run

        meta, arrays = trace.to_run_parts()
        save_run(args.out, "sensor", {"report": report, "profile": report.to_profile().to_json(),
                                      "trace": meta, "timeline": timeline.to_json()}, arrays=arrays)
    if args.json:
        doc = {"report": to_jsonable(report), "profile": report.to_profile().to_json(),
               "profile_path": None if saved is None else str(saved)}
        json.dump(doc, sys.stdout, indent=1)
        print()
    else:
        render(report, Console(), saved)
    return 0


def _f(x, fmt: str = ".1f", unit: str = "") -> str:
    return "-" if x is None else f"{x:{fmt}}{unit}"


def render(report, console, saved) -> None:
    from rich.table import Table

    console.print(f"[bold]{report.name}[/] ({report.uuid}, driver {report.driver}), measured in "
                  f"{report.duration_s:.0f} s")
    t = Table(title="power sources")
    for col in ("source", "period ms (p10-p90)", "window ms", "lag ms", "coverage", "call us"):
        t.add_column(col, justify="right" if col != "source" else "left")
    for s in report.sources:
        p = s.period
        period = "-" if p.median_ms is None else f"{p.median_ms:.1f} ({p.p10_ms:.1f}-{p.p90_ms:.1f})"
        t.add_row(s.name if s.available else f"{s.name} (absent)", period,
                  _f(None if s.window_s is None else s.window_s * 1e3, ".0f"),
                  _f(None if s.lag_s is None else s.lag_s * 1e3, ".0f"),
                  _f(None if s.coverage is None else s.coverage * 100, ".0f", "%"), _f(s.call_latency_us, ".0f"))
    console.print(t)
    a = Table(title="agreement with the energy counter (samples - counter, % of counter)")
    for col in ("load", "duty", "window s", "counter W", "samples", "instant field", "1 s average field"):
        a.add_column(col, justify="right")
    for x in report.agreements:
        a.add_row(x.label, _f(x.duty, ".3f"), _f(x.window_s, ".2f"), _f(x.counter_mean_w, ".0f"),
                  _f(x.samples_diff_pct, "+.1f", "%"), _f(x.instant_diff_pct, "+.1f", "%"),
                  _f(x.average_diff_pct, "+.1f", "%"))
    console.print(a)
    console.print(f"idle before work: {_f(report.idle_before_work_w, '.0f', ' W')} ({report.idle_before_work_kind}); "
                  f"right after work: {_f(report.idle_after_work_w, '.0f', ' W')}")
    if report.lost_samples:
        console.print(f"[yellow]{report.lost_samples:.0f} buffered samples were lost during the run[/]")
    for n in report.notes:
        console.print(f"note: {n}")
    if saved:
        console.print(f"sensor profile saved to {saved}")


def render_run(run) -> None:
    """`kernelprof report` of a kind="sensor" run: the stored report, as it was printed."""
    from types import SimpleNamespace

    from rich.console import Console

    def ns(x):
        if isinstance(x, dict):
            return SimpleNamespace(**{k: ns(v) for k, v in x.items()})
        if isinstance(x, list):
            return [ns(v) for v in x]
        return x

    render(ns(run.payload["report"]), Console(), None)
