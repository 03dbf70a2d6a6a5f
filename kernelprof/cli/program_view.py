"""Tables of a `kernelprof run` recording: whole run, energy per range, kernels or classes by energy."""
from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from kernelprof.cli.output import console, fmt
from kernelprof.cli.kernel_names import core_kernel_name, short_kernel_name

BY = ("range", "kernel", "class")


def _pct(x: float | None, total: float | None) -> str:
    return "-" if x is None or not total else f"{100 * x / total:.1f}%"


def render_whole_run(s) -> None:
    console.print(f"[bold]{escape(s.command)}[/]: {s.status} (exit {s.exit_code}), {fmt(s.time_s, 's')}, "
                  f"{fmt(s.energy_j, 'J')} at {fmt(s.mean_power_w, 'W')} mean")
    if s.idle_j is not None:
        console.print(f"  idle {fmt(s.idle_j, 'J')} ({fmt(s.idle_baseline_w, 'W')} baseline x run time), "
                      f"dynamic {fmt(s.dynamic_j, 'J')} ({_pct(s.dynamic_j, s.energy_j)})")
    if len(s.gpus) > 1:
        for g in s.gpus:
            console.print(f"  GPU {g.gpu}: {fmt(g.energy_j, 'J')} at {fmt(g.mean_power_w, 'W')}")
    for f in s.flags:
        console.print(f"[yellow]flag: {f}[/]")


def render_ranges(s) -> None:
    if not s.ranges:
        console.print("[dim]no NVTX ranges or kernelprof.phase() in the program[/]")
        return
    t = Table(title="Energy per range (buffered samples integrated; instances of a path summed)")
    for col in ("range", "instances", "time", "energy", "% of run", "mean power"):
        t.add_column(col, justify="left" if col == "range" else "right")
    by_flags: dict[tuple[str, ...], list[str]] = {}
    for r in s.ranges:
        t.add_row("  " * r.depth + escape(r.name), str(r.instances), fmt(r.time_s, "s"), fmt(r.energy_j, "J"),
                  _pct(r.energy_j, s.energy_j), fmt(r.mean_power_w, "W"))
        if r.flags:
            by_flags.setdefault(tuple(r.flags), []).append(r.name)
    console.print(t)
    for flags, names in by_flags.items():  # below the table: a flags column folds into a tower at 80 columns
        console.print(f"[yellow]flags[/] {escape(', '.join(names))}: {escape(', '.join(flags))}")


def render_classes(fit, run_j: float | None, top: int) -> None:
    t = Table(title=f"GPU {fit.gpu}: energy per kernel class (window regression over {fit.span_s:.1f} s, "
                    f"{fit.windows} windows)")
    # short headers and unwrapped numbers: the table fits 80 columns, the name column folds
    t.add_column("class", overflow="fold", min_width=12, ratio=1)
    for col in ("calls", "energy ± 1σ", "% run", "J/call", "W busy", "time %"):
        t.add_column(col, justify="right", no_wrap=True)
    for c in fit.classes[:top]:
        if c.identifiable:
            vals = (f"{fmt(c.energy_j, 'J')[:-2]} ± {fmt(c.energy_se_j, 'J')}", _pct(c.energy_j, run_j),
                    fmt(c.energy_per_call_j, "J"), fmt(c.power_w, "W"))
        else:
            vals = ("[yellow]n/i[/]", "", "", "")
        label = core_kernel_name(c.name) if len(c.members) == 1 else f"{escape(c.name[:40])} ({len(c.members)})"
        t.add_row(label, str(c.calls), *vals, f"{100 * c.busy_s / fit.span_s:.1f}%")
    t.add_row("(idle: no kernel)", "", fmt(fit.idle_energy_j, "J"), _pct(fit.idle_energy_j, run_j), "",
              fmt(fit.idle_power_w, "W"), f"{100 * fit.idle_s / fit.span_s:.1f}%")
    t.add_row("(residual)", "", fmt(fit.residual_j, "J"), _pct(fit.residual_j, run_j), "", "", "")
    console.print(t)
    for c in fit.classes:
        if not c.identifiable:
            console.print(f"[dim]not identifiable: {escape(c.name[:60])}: {escape(c.reason or '')} "
                          f"(its fitted {fmt(c.energy_j, 'J')} stays in the balance)[/]")


def render_kernels(fit, run_j: float | None, top: int) -> None:
    t = Table(title=f"GPU {fit.gpu}: top kernels by energy (window regression over {fit.span_s:.1f} s)")
    t.add_column("kernel", overflow="fold", min_width=14, ratio=2)
    t.add_column("class", overflow="fold", min_width=8, max_width=12, ratio=1)
    for col in ("calls", "energy", "J/call", "W busy", "time %"):
        t.add_column(col, justify="right", no_wrap=True)
    power = {c.name: c for c in fit.classes}
    for k in fit.kernels[:top]:
        c = power[k.class_name]
        mark = "" if k.method == "own_class" else " *"
        if k.energy_j is None:
            vals = ("[yellow]n/i[/]", "", "")
        else:
            vals = (fmt(k.energy_j, "J") + mark, fmt(k.energy_per_call_j, "J"), fmt(c.power_w, "W"))
        t.add_row(core_kernel_name(k.name), escape(k.class_name[:24]) if k.class_name != k.name else "(itself)", str(k.calls), *vals,
                  f"{100 * k.busy_s / fit.span_s:.1f}%")
    console.print(t)
    unknown = [k for k in fit.kernels if k.energy_j is None]
    if unknown:
        console.print(f"[dim]{len(unknown)} kernel name(s) are in classes that are not identifiable: no energy is "
                      "shown for them (see --by class for why)[/]")
    if any(k.method != "own_class" for k in fit.kernels[:top]):
        console.print("[dim]* its class's power x its own busy time (the class, not the name, was fitted)[/]")


def render_summary(s, *, by: str | None = None, top: int = 15) -> None:
    """Whole run, then the tables `by` asks for (default: ranges, classes and kernels)."""
    render_whole_run(s)
    if by in (None, "range"):
        render_ranges(s)
    for fit in s.kernel_attribution:
        if by in (None, "class"):
            render_classes(fit, fit.measured_energy_j, top)
        if by in (None, "kernel"):
            render_kernels(fit, fit.measured_energy_j, top)
    if by in ("kernel", "class") and not s.kernel_attribution:
        console.print("[yellow]no kernel attribution in this run (see the notes)[/]")
    for n in s.notes:
        console.print(f"[dim]note: {escape(n)}[/]")


def render_run(run, by: str | None = None) -> None:
    from kernelprof.methods.program_summary import summarize_program

    render_summary(summarize_program(run.path), by=by)
