"""Rendering shared by the CLI commands: a rich console, JSON output, number formatting."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console

from kernelprof.outputs.runfile import to_jsonable

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
