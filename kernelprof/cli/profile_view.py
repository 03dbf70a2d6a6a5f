"""Tables of a Profiler run (kind "profile"): per-phase time, energy, power, counter check, flags."""
from __future__ import annotations

from rich.table import Table

from kernelprof.cli.output import console, fmt


def render_run(run) -> None:
    """`kernelprof report` of a profile run: attribution is recomputed from the stored trace."""
    from kernelprof.profiler import load_profile

    render_profile(load_profile(run.path), title=f"Profile {run.path.name}")


def render_profile(res, *, title: str = "Profile") -> None:
    t = Table(title=f"{title} ({res.provenance}, sampler: {res.sampler_mode})")
    for col in ("phase", "time", "energy", "mean power", "counter", "samples vs counter", "method", "flags"):
        t.add_column(col, justify="left" if col in ("phase", "method", "flags") else "right")
    for p in (*res.phases, res.total):
        label = ("  " * p.depth + p.name) if p is not res.total else "[bold]whole window[/]"
        t.add_row(label, fmt(p.time_s * 1e3, "ms"), fmt(p.energy_j, "J"), fmt(p.mean_power_w, "W"),
                  fmt(p.energy_counter_j, "J"), fmt(p.counter_diff_pct, "%", digits=2), p.method,
                  ",".join(f.code for f in p.flags))
    console.print(t)
    if res.lost_samples:
        console.print(f"[yellow]{res.lost_samples:.0f} buffered samples were lost (the sampler drained late)[/]")
    for s in res.sources:
        if s.get("missing"):
            console.print(f"[dim]GPU {s['gpu']}: no {', '.join(s['missing'])}[/]")
    for n in res.notes:
        console.print(f"[dim]note: {n}[/]")
