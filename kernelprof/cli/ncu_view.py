"""The Nsight Compute table of `kernelprof counters`: the profiled call's kernels, then each measured
quantity against its analytic count with a verdict and its tolerance."""
from __future__ import annotations

from typing import Any

from rich.table import Table

from kernelprof.cli.output import console, fmt, fmt_si

_STATUS_STYLE = {"agrees": "green", "explained": "cyan", "above": "yellow", "below": "yellow",
                 "other-pipe": "yellow", "info": "dim", "missing": "red"}


def value_cell(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "%":
        return fmt(v, "%")
    if unit == "s":
        return fmt_si(v * 1e6, "us") if v < 1e-3 else fmt(v * 1e3, "ms")
    return fmt_si(v, unit)


def render_ncu(c: dict[str, Any]) -> None:
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
        kt.add_row(k.name, k.grid, k.block, value_cell(k.value(DURATION), "s"), value_cell(tensor_sum, "FLOP"),
                   value_cell(k.value(DRAM_READ), "B"), value_cell(k.value(DRAM_WRITE), "B"))
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
        t.add_row(row["quantity"], value_cell(row["measured"], row["unit"]), value_cell(row["analytic"], row["unit"]),
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
