"""Rendering shared by the CLI commands: a rich console, JSON output, number formatting."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from kernelprof.outputs.runfile import to_jsonable

class FoldingConsole(Console):
    """A Console whose tables fold long cells onto more lines instead of cutting them with an
    ellipsis: at 80 columns (the default when piped) a cut key ("prefi…", "gemm…") or flag
    ("samp…") is unreadable, a folded one only taller."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003 (rich's name)
        for obj in objects:
            if isinstance(obj, Table):
                fold_table(obj)
        super().print(*objects, **kwargs)


def fold_table(table: Table) -> Table:
    """Set every column (and any nested table) to fold rather than truncate."""
    for col in table.columns:
        col.overflow = "fold"
        col.no_wrap = False
        for cell in col._cells:
            if isinstance(cell, Table):
                fold_table(cell)
    return table


console = FoldingConsole(highlight=False)
err_console = FoldingConsole(stderr=True, highlight=False)


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(doc), indent=2, allow_nan=False) + "\n")


def fmt(value: float | None, unit: str = "", *, digits: int = 3) -> str:
    """A number with `digits` significant digits and its unit; '-' for missing values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value == 0:
        text = "0"
    else:
        mag = math.floor(math.log10(abs(value)))
        decimals = max(0, digits - 1 - mag)
        text = f"{value:,.{decimals}f}"
    return f"{text} {unit}".rstrip()


def fmt_si(value: float | None, unit: str, *, digits: int = 3) -> str:
    """Scale to k/M/G/T/P: fmt_si(989.4e12, 'FLOP/s') -> '989 TFLOP/s'."""
    if value is None:
        return "-"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return fmt(value / factor, prefix + unit, digits=digits)
    return fmt(value, unit, digits=digits)


# How much a flag should worry a reader: "error" means the figure is likely wrong, "warn" that it may
# be off and says why, "info" a condition worth knowing. Codes not listed are "warn".
FLAG_SEVERITY = {
    "synthetic_trace": "error", "outside_trace": "error", "samples_lost": "error", "no_samples": "error",
    "throttled": "warn", "clocks_moved": "warn", "sample_gap": "warn", "short_interval": "warn",
    "fallback_method": "warn", "other_processes": "warn", "wide_ci": "warn", "above_peak": "warn",
    "sensor_profile_not_measured": "info", "launch_bound": "info", "power_capped": "info",
}
SEVERITY_ORDER = ("error", "warn", "info")


def flag_severity(code: str) -> str:
    return FLAG_SEVERITY.get(code, "warn")


def flags_summary(codes: list[str]) -> str | None:
    """One line: 'flags: 1 error (samples_lost x1); 2 warn (sample_gap x12, throttled x3)'; None if none."""
    counts: dict[str, dict[str, int]] = {}
    for c in codes:
        counts.setdefault(flag_severity(c), {}).setdefault(c, 0)
        counts[flag_severity(c)][c] += 1
    parts = []
    for sev in SEVERITY_ORDER:
        if sev in counts:
            items = sorted(counts[sev].items(), key=lambda kv: -kv[1])
            parts.append(f"{len(items)} {sev} (" + ", ".join(f"{c} x{n}" for c, n in items) + ")")
    return "flags: " + "; ".join(parts) if parts else None
