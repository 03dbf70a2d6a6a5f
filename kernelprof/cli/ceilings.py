"""`kernelprof ceilings`: measure (or show the cached) copy bandwidth and matmul throughput."""
from __future__ import annotations

import argparse

from rich.table import Table

from kernelprof.methods.ceilings import get_ceilings
from kernelprof.cli.output import console, fmt, fmt_si, print_json
from kernelprof.estimates.datasheets import datasheet_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ceilings", help="measure this GPU's copy bandwidth and bf16/fp16 matmul rate (cached per GPU)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    p.add_argument("--refresh", action="store_true", help="measure again even if cached")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.device < 0:
        from kernelprof.errors import UsageError

        raise UsageError(f"--device must be >= 0, got {args.device}")
    ceil, cached = get_ceilings(args.device, refresh=args.refresh)
    sheet = datasheet_for(ceil.gpu_name)
    if args.json:
        print_json({"ceilings": ceil.to_json(), "from_cache": cached,
                    "datasheet": sheet.to_json() if sheet else None})
        return 0
    t = Table(title=f"Ceilings of {ceil.gpu_name} ({'cached ' + ceil.measured_at if cached else 'measured now'})")
    t.add_column("what")
    t.add_column("measured", justify="right")
    t.add_column("datasheet", justify="right")
    t.add_column("measured / datasheet", justify="right")
    rows = [
        ("device-to-device copy (read+write)", ceil.copy_bytes_s, sheet.memory_bandwidth_bytes_s if sheet else None, "B/s"),
        (f"bf16 matmul {ceil.matmul_shape[0]}^3", ceil.bf16_matmul_flop_s, sheet.bf16_flop_s if sheet else None, "FLOP/s"),
        (f"fp16 matmul {ceil.matmul_shape[0]}^3", ceil.fp16_matmul_flop_s, sheet.bf16_flop_s if sheet else None, "FLOP/s"),
    ]
    for label, measured, peak, unit in rows:
        ratio = fmt(100 * measured / peak, "%") if peak else "no datasheet entry"
        t.add_row(label, fmt_si(measured, unit), fmt_si(peak, unit) if peak else "-", ratio)
    console.print(t)
    return 0
