"""`kernelprof counters` (Nsight Compute counters beside the analytic counts) and
`kernelprof utilization` (NVML's GPU utilization beside the achieved fraction of peak).

Both save run files of kind "counters" (payload {"counters": ..., "utilization": ...}, either may be
None); `render_counters(run)` prints one again, for `kernelprof report`.
"""
from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from kernelprof.cli.output import console, fmt, fmt_si, print_json

_STATUS_STYLE = {"agrees": "green", "explained": "cyan", "above": "yellow", "below": "yellow",
                 "other-pipe": "yellow", "info": "dim", "missing": "red"}


def _kernel_args(p: argparse.ArgumentParser, op_optional: bool = False) -> None:
    if op_optional:
        p.add_argument("op", nargs="?", help="gemm, attention or decode (not with --energy)")
    else:
        p.add_argument("op", help="gemm, attention or decode")
    p.add_argument("--variant", help="implementation (default: the op's first, e.g. triton)")
    p.add_argument("--shape", help="e.g. 4096x4096x4096, b=4,h=32,s=4096,d=128,causal, b=16,h=32,kv=8,ctx=8192,d=128 "
                                   "(default: the op's default shape)")
    p.add_argument("--dtype", default="bf16", help="bf16, fp16, fp32 or fp8 (default bf16)")
    p.add_argument("--seed", type=int, default=0, help="input seed (default 0)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("-o", "--out", metavar="PATH", help="save a run file (kind 'counters') to PATH")
    p.add_argument("--save", dest="out", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("counters", help="profile one kernel call under Nsight Compute and set its counters "
                                        "(FLOPs, DRAM bytes, L2, occupancy) beside the analytic counts")
    _kernel_args(p, op_optional=True)
    p.add_argument("--energy", action="store_true",
                   help="instead of ncu: NVML's energy counter, buffered samples, instant and 1 s average fields "
                        "side by side over a steady load and square waves (reuses `kernelprof sensor`)")
    p.add_argument("--from", dest="from_run", metavar="SENSOR_RUN",
                   help="with --energy: take the loads from a saved `kernelprof sensor --out` run (no GPU needed)")
    p.add_argument("--utilization", action="store_true",
                   help="also show NVML's GPU utilization beside the achieved fraction of peak FLOP/s")
    p.add_argument("--window-s", type=float, default=2.0, help="with --utilization: seconds sampled")
    p.add_argument("--window", dest="window_s", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--cache-control", choices=("all", "none"), default="all",
                   help="ncu's cache control: 'all' flushes L2 before the kernel (default), 'none' keeps it warm")
    p.add_argument("--ncu", help="path of ncu (default: $KERNELPROF_NCU, else ncu on the PATH)")
    p.add_argument("--timeout-s", type=float, default=600.0, help="give up on ncu after this long (default 600)")
    p.add_argument("--ncu-output", metavar="PATH", help="also write ncu's raw text output to PATH")
    p.set_defaults(handler=run_counters)

    u = sub.add_parser("utilization", help="NVML's GPU utilization while a kernel runs back to back, beside its "
                                           "achieved fraction of peak FLOP/s and bandwidth")
    _kernel_args(u)
    u.add_argument("--window-s", type=float, default=2.0, help="seconds sampled after a 1 s ramp")
    u.add_argument("--window", dest="window_s", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    u.add_argument("--sample-hz", type=float, default=20.0, help="NVML reads per second (default 20)")
    u.set_defaults(handler=run_utilization)


def _finish(args: argparse.Namespace, payload: dict[str, Any]) -> int:
    from kernelprof.outputs.runfile import save_run, to_jsonable

    doc = to_jsonable(payload)
    if args.out:
        path = save_run(args.out, kind="counters", payload=doc)
        if not args.json:
            console.print(f"saved {path}")
    if args.json:
        print_json(doc)
    else:
        render_payload(doc)
    return 0


def run_counters(args: argparse.Namespace) -> int:
    if args.energy:
        return run_energy(args)
    if args.from_run:
        from kernelprof.errors import UsageError

        raise UsageError("--from goes with --energy")
    if not args.op:
        from kernelprof.errors import UsageError

        raise UsageError("counters needs an op (gemm, attention or decode), or --energy")
    from kernelprof.estimates.counters.run import measure_counters

    result = measure_counters(args.op, args.variant, args.shape, args.dtype, ncu=args.ncu, device=args.device,
                              cache_control=args.cache_control, timeout_s=args.timeout_s, seed=args.seed,
                              raw_output_path=args.ncu_output)
    util = None
    if args.utilization:
        from kernelprof.estimates.utilization import measure_utilization

        util = measure_utilization(args.op, result.variant, result.shape, args.dtype, window_s=args.window_s,
                                   device_index=args.device,
                                   seed=args.seed)
    return _finish(args, {"counters": result, "utilization": util})


def run_energy(args: argparse.Namespace) -> int:
    from kernelprof.methods.nvml_crosscheck import from_sensor_run, measure_now

    check = from_sensor_run(args.from_run) if args.from_run else measure_now()
    return _finish(args, {"counters": None, "utilization": None, "energy": check.to_json()})


def run_utilization(args: argparse.Namespace) -> int:
    from kernelprof.estimates.utilization import measure_utilization

    util = measure_utilization(args.op, args.variant, args.shape, args.dtype, window_s=args.window_s,
                                   device_index=args.device,
                               sample_hz=args.sample_hz, seed=args.seed)
    return _finish(args, {"counters": None, "utilization": util})


# ---------------------------------------------------------------------------------------------
# Rendering (from JSON-able payloads, so saved runs render the same on a machine with no GPU)

def render_counters(run: Any) -> None:
    """Print a saved run of kind 'counters' (a kernelprof.outputs.runfile.RunFile, or its payload dict)."""
    payload = run.payload if hasattr(run, "payload") else run
    if not any(payload.get(k) for k in ("counters", "utilization", "energy")):
        from kernelprof.errors import RunFileError

        raise RunFileError("this counters run holds no counters, utilization or energy section; the file is corrupt")
    render_payload(payload)


def render_payload(payload: dict[str, Any]) -> None:
    if payload.get("counters"):
        _render_ncu(payload["counters"])
    if payload.get("utilization"):
        _render_utilization(payload["utilization"])
    if payload.get("energy"):
        _render_energy(payload["energy"])


def _render_energy(e: dict[str, Any]) -> None:
    t = Table(title=f"NVML energy sources on {e['gpu_name']} (driver {e['driver']}), each vs the energy counter "
                    f"over the same pinned window; from {e['source_run']}")
    for col in ("load", "duty", "window", "counter", "buffered samples", "instant field", "1 s average field",
                "spread"):
        t.add_column(col, justify="left" if col == "load" else "right")
    for r in e["rows"]:
        pct = lambda v: "-" if v is None else f"{v:+.1f} %"  # noqa: E731
        t.add_row(r["load"], fmt(r["duty"], digits=2), fmt(r["window_s"], "s"),
                  f"{fmt(r['counter_j'], 'J')} ({fmt(r['counter_mean_w'], 'W')})", pct(r["samples_vs_counter_pct"]),
                  pct(r["instant_vs_counter_pct"]), pct(r["average_vs_counter_pct"]), fmt(r["spread_pct"], "%"))
    console.print(t)
    console.print("[dim]The counter integrates power; the buffered samples are ~20 ms averages; the instant field "
                  "covers a short window of each ~100 ms and can alias with a periodic load; the average field is a "
                  "1 s moving average that lags load changes.[/]")


def _value(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "%":
        return fmt(v, "%")
    if unit == "s":
        return fmt_si(v * 1e6, "us") if v < 1e-3 else fmt(v * 1e3, "ms")
    return fmt_si(v, unit)


def _render_ncu(c: dict[str, Any]) -> None:
    console.print(f"[bold]{c['op']} / {c['variant']} / {c['shape']} / {c['dtype']}[/bold] on "
                  f"{c.get('device_name') or 'unknown GPU'} - Nsight Compute {c.get('ncu_version', '?')}, "
                  f"clocks unmanaged, cache control '{c.get('cache_control')}'")
    if c.get("tile_config"):
        tile = ", ".join(f"{k}={v}" for k, v in c["tile_config"].items() if k != "source")
        console.print(f"tile: {tile}")
    kt = Table(title=f"Kernels in the profiled call ({len(c['kernels'])})")
    kt.add_column("kernel", overflow="fold")
    for col in ("grid", "block"):
        kt.add_column(col)
    for col in ("duration", "tensor FLOPs", "DRAM read", "DRAM written"):
        kt.add_column(col, justify="right")
    from kernelprof.estimates.counters.metrics import DRAM_READ, DRAM_WRITE, DURATION, TENSOR_FLOP_METRICS
    from kernelprof.estimates.counters.ncu import NcuKernel

    for kd in c["kernels"]:
        k = NcuKernel.from_json(kd)
        tensor = [k.value(m) for m in TENSOR_FLOP_METRICS.values()]
        tensor_sum = None if all(v is None for v in tensor) else sum(v for v in tensor if v is not None)
        kt.add_row(k.name, k.grid, k.block, _value(k.value(DURATION), "s"), _value(tensor_sum, "FLOP"),
                   _value(k.value(DRAM_READ), "B"), _value(k.value(DRAM_WRITE), "B"))
    console.print(kt)

    t = Table(title="Measured (ncu) / analytic")
    for col, just in (("quantity", "left"), ("measured", "right"), ("analytic", "right"),
                      ("measured / analytic", "right"), ("model / analytic", "right"), ("tolerance", "right"),
                      ("verdict", "left")):
        t.add_column(col, justify=just)
    for row in c["comparisons"]:
        style = _STATUS_STYLE.get(row["status"], "")
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.4f}"
        model = (f"{row['expected'] / row['analytic']:.4f}" if row.get("expected") is not None and row.get("analytic")
                 else "-")
        tol = "-" if row["tolerance"] is None else f"{row['tolerance']:.0%}"
        t.add_row(row["quantity"], _value(row["measured"], row["unit"]), _value(row["analytic"], row["unit"]),
                  ratio, model, tol, f"[{style}]{row['status']}[/{style}]" if style else row["status"])
    console.print(t)
    for row in c["comparisons"]:
        if row["status"] in ("info", "missing") and not row["quantity"].startswith("FLOPs"):
            continue
        console.print(f"- [bold]{row['quantity']}[/bold]: {row['explanation']}")
        if row["tolerance"] is not None:
            console.print(f"  tolerance {row['tolerance']:.0%}: {row['tolerance_why']}", style="dim")
    totals = c["totals"]
    by_dtype = {d: v for d, v in totals["tensor_flops_by_dtype"].items() if v}
    by_path = {p: v for p, v in totals["tensor_flops_by_path"].items() if v}
    by_prec = {p: v for p, v in totals["fma_flops_by_precision"].items() if v}
    if by_dtype or by_prec:
        parts = [f"tensor {d}: {fmt_si(v, 'FLOP')}" for d, v in by_dtype.items()]
        parts += [f"via {p}: {fmt_si(v, 'FLOP')}" for p, v in by_path.items()]
        parts += [f"FMA-pipe {p}: {fmt_si(v, 'FLOP')}" for p, v in by_prec.items()]
        console.print("FLOPs by source: " + "; ".join(parts))
    if totals.get("sm_clock_hz"):
        console.print(f"SM clock during the kernel: {fmt(totals['sm_clock_hz'] / 1e6, 'MHz')}")
    if c.get("metrics_missing"):
        console.print(f"not returned by ncu: {', '.join(c['metrics_missing'])}", style="dim")
    for note in c.get("notes", []):
        console.print(f"note: {note}", style="yellow")


def _pct(x: float | None) -> str:
    return "-" if x is None else (fmt(100 * x, "%") if x >= 0.001 else f"{100 * x:.3f} %")


def _render_utilization(u: dict[str, Any]) -> None:
    t = Table(title=f"GPU utilization is not FLOP utilization: {u['op']} / {u['variant']} / {u['shape']} / "
                    f"{u['dtype']} on {u['gpu_name']}")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_column("how it was obtained")
    n = len(u["nvml_gpu_util_pct"])
    gpu = u["nvml_gpu_util_pct"]
    t.add_row("NVML GPU utilization", fmt(u["nvml_gpu_util_median_pct"], "%"),
              f"median of {n} reads at {u['sample_hz']:.0f} Hz over {u['window_s']:.1f} s of back-to-back calls"
              + (f" (range {min(gpu)}-{max(gpu)} %)" if gpu else ""))
    t.add_row("NVML memory utilization", fmt(u["nvml_mem_util_median_pct"], "%"),
              "share of time the memory controller was busy, same reads")
    t.add_row("time per call", _value(u["time_per_call_s"], "s"),
              f"time_cuda median of {u['timing']['reps']} calls, L2 {u['timing']['cache']}"
              + (f"; back to back {_value(u['loop_time_per_call_s'], 's')}" if u.get("loop_time_per_call_s") else ""))
    t.add_row("achieved FLOP/s", fmt_si(u["achieved_flop_s"], "FLOP/s"), f"{fmt_si(u['flops'], 'FLOP')} exact / time")
    t.add_row(f"fraction of peak FLOP/s ({u['dtype']})", _pct(u["flop_fraction"]),
              f"datasheet {fmt_si(u['peak_flop_s'], 'FLOP/s')} dense ({u['datasheet_model'] or 'no entry'})")
    t.add_row("achieved bandwidth", fmt_si(u["achieved_bytes_s"], "B/s"), f"{fmt_si(u['min_bytes'], 'B')} minimum / time")
    t.add_row("fraction of peak bandwidth", _pct(u["bandwidth_fraction"]),
              f"datasheet {fmt_si(u['peak_bytes_s'], 'B/s')}")
    console.print(t)
    if u["nvml_gpu_util_median_pct"] is not None and u["flop_fraction"] is not None:
        console.print(f"NVML says the GPU was {fmt(u['nvml_gpu_util_median_pct'], '%')} utilized: a kernel was running "
                      f"that share of the time. The kernel used {_pct(u['flop_fraction'])} of peak FLOP/s and "
                      f"{_pct(u['bandwidth_fraction'])} of peak bandwidth.")
    for note in u.get("notes", []):
        console.print(f"note: {note}", style="yellow")
