"""The ladder's table in 80 columns (`kernelprof ladder`, `kernelprof report` of a ladder JSONL)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rich.table import Table

from kernelprof.cli.output import console, fmt

if TYPE_CHECKING:
    from kernelprof.methods.ladder import RungResult


# Flags as the table's last cell (their reasons are printed below the table).
_FLAG_SHORT = {"not_supported": "n/a", "no_larger_batch_fits": "n/a", "out_of_memory": "OOM"}


def render_ladder(rungs: "Sequence[RungResult]") -> None:
    """The ladder in 80 columns: one row per rung, each step's time x power split on a line below."""
    batches = sorted({r.batch for r in rungs})
    t = Table(title=f"optimization ladder, per request (batch {', '.join(map(str, batches))})", box=None,
              pad_edge=False, padding=(0, 1))
    for col in ("rung", "J/req", "prefill", "decode", "t/batch", "mean W", "vs below"):
        t.add_column(col, justify="left" if col == "rung" else "right", no_wrap=True,
                     min_width=max(len(r.name) for r in rungs) if col == "rung" else None)
    for r in rungs:
        vs = f"{100 * (r.change.energy_ratio - 1):+.1f}%" if r.change else \
            (",".join(_FLAG_SHORT.get(f, f) for f in r.flags) or "-")
        name = r.name if len(batches) == 1 else f"{r.name} (b{r.batch})"
        t.add_row(name, fmt(r.j_per_request, "J"), fmt(r.prefill_j, "J"), fmt(r.decode_j, "J"),
                  fmt(r.time_s, "s"), fmt(r.mean_power_w, "W"), vs)
    console.print(t)
    for r in rungs:
        if r.change:
            console.print(f"{r.name} vs {r.change.below}: {r.change.text} ({r.change.verdict})")
        if r.reason:
            console.print(f"[dim]  {r.reason}[/]")
        for n in r.notes:
            console.print(f"[dim]{r.name}: {n}[/]")
