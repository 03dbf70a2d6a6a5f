"""`kernelprof report PROFILE --by class`: per phase, joules per kernel class, idle and residual."""
from __future__ import annotations

from pathlib import Path

from rich.table import Table

from kernelprof.cli.output import console, fmt


def render_phase_classes(path: str | Path) -> None:
    from kernelprof.methods.phase_classes import classes_per_phase

    for fit, phases in classes_per_phase(path):
        idle = fmt(fit.idle_power_w, "W") if fit.idle_power_se_w is not None else "not identified"
        console.print(f"GPU {fit.gpu}: class powers fitted over the whole recording ({fit.span_s:.2f} s, "
                      f"{fit.windows} windows); idle power {idle}")
        for ph in phases:
            t = Table(title=f"{ph.path} ({ph.instances}x, {fmt(ph.time_s, 's')}): {fmt(ph.energy_j, 'J')} measured")
            for col in ("class", "busy", "fitted W", "energy", "% of phase"):
                t.add_column(col, justify="left" if col == "class" else "right", no_wrap=True)
            for c in ph.classes:
                pct = None if c.energy_j is None or not ph.energy_j else 100 * c.energy_j / ph.energy_j
                t.add_row(c.name, fmt(c.busy_s, "s"), fmt(c.power_w, "W"),
                          "not identifiable" if c.energy_j is None else fmt(c.energy_j, "J"), fmt(pct, "%"))
            idle_known = ph.idle_energy_j is not None
            t.add_row("idle", fmt(ph.idle_s, "s"), fmt(fit.idle_power_w, "W") if idle_known else "-",
                      fmt(ph.idle_energy_j, "J") if idle_known else "not identified",
                      fmt(100 * ph.idle_energy_j / ph.energy_j if idle_known and ph.energy_j else None, "%"))
            t.add_row("residual", "", "", fmt(ph.residual_j, "J"),
                      fmt(100 * ph.residual_j / ph.energy_j if ph.energy_j else None, "%"))
            console.print(t)
        unknown = [c for c in fit.classes if not c.identifiable]
        for c in unknown:
            console.print(f"[dim]not identifiable: {c.name}: {c.reason or ''}[/]")
        if unknown:
            console.print(f"[dim]classes the regression cannot identify carry no joules; their energy is in the "
                          f"residual. {_advice(unknown)}[/]")


def _advice(unknown) -> str:
    """What would make the classes identifiable, from why they are not."""
    if any("collinear" in (c.reason or "") or "zero bound" in (c.reason or "") for c in unknown):
        # a longer run of the same program repeats the same mix in every window: it cannot help
        return ("Their busy shares are nearly the same in every 20 ms window (the program repeats one mix of "
                "kernels), so recording longer does not separate them: vary the mix between windows (phases of "
                "different batch or context), or merge them into one class (`kernelprof run --class GROUP=REGEX`).")
    return "Record longer (~1 s of 20 ms windows per class) or group them."
