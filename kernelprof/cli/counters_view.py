"""Tables of a run of kind "counters" (`kernelprof counters` / `utilization`, and `kernelprof report`),
from JSON-able payloads, so saved runs render the same on a machine with no GPU."""
from __future__ import annotations

from typing import Any

from rich.table import Table

from kernelprof.cli.ncu_view import render_ncu, value_cell
from kernelprof.cli.output import console, fmt, fmt_si


def render_counters(run: Any) -> None:
    """Print a saved run of kind 'counters' (a kernelprof.outputs.runfile.RunFile, or its payload dict)."""
    payload = run.payload if hasattr(run, "payload") else run
    if not any(payload.get(k) for k in ("counters", "utilization", "energy")):
        from kernelprof.errors import RunFileError

        raise RunFileError("this counters run holds no counters, utilization or energy section; the file is corrupt")
    render_payload(payload)


def render_payload(payload: dict[str, Any]) -> None:
    if payload.get("counters"):
        render_ncu(payload["counters"])
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
    t.add_row("time per call", value_cell(u["time_per_call_s"], "s"),
              f"time_cuda median of {u['timing']['reps']} calls, L2 {u['timing']['cache']}"
              + (f"; back to back {value_cell(u['loop_time_per_call_s'], 's')}" if u.get("loop_time_per_call_s") else ""))
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
