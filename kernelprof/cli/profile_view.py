"""Tables of a Profiler run (kind "profile"): per-phase time, energy, power, counter check, flags."""
from __future__ import annotations

from rich.table import Table

from kernelprof.cli.kernel_names import short_kernel_name
from kernelprof.cli.output import console, flags_summary, fmt

SUMMARIZE_OVER = 3  # a path repeated more often than this (decode steps) is summarized


def render_run(run, *, steps: bool = False, by: str | None = None) -> None:
    """`kernelprof report` of a profile run: attribution is recomputed from the stored trace.
    Phases repeated more than SUMMARIZE_OVER times show as one summary row unless `steps`.
    `by`: "range" prints the phase table only, "kernel" the kernel table only (None: both)."""
    from kernelprof.errors import UsageError
    from kernelprof.profiler import load_profile, load_profile_run

    inputs = load_profile_run(run.path)
    if by == "kernel" and inputs.kernels is None:
        raise UsageError(f"{run.path} recorded no kernels (it was profiled without kernels=True): "
                         "--by kernel has nothing to show; use --by range")
    if by in (None, "range"):
        render_profile(load_profile(run.path), title=f"Profile {run.path.name}", steps=steps)
    if inputs.kernels is not None and by in (None, "kernel"):
        render_kernels(inputs.kernels, inputs.timeline)


NARROW_BELOW = 110  # columns: under this the counter and discipline columns move out of the table


def _stats(values: list[float | None], unit: str, scale: float = 1.0) -> str:
    """'mean unit' over 'min-max' on a second line of the cell."""
    v = [x * scale for x in values if x is not None]
    if not v:
        return "-"
    return f"{fmt(sum(v) / len(v), unit)}\n{fmt(min(v))}-{fmt(max(v))}"


def render_profile(res, *, title: str = "Profile", steps: bool = False) -> None:
    narrow = console.width < NARROW_BELOW
    cols = (("phase", "time", "energy", "mean power", "flags") if narrow else
            ("phase", "time", "energy", "± 1σ", "mean power", "counter", "samples vs counter",
             "counter discipline", "method", "flags"))
    t = Table(title=f"{title} ({res.provenance}, sampler: {res.sampler_mode})")
    for col in cols:
        t.add_column(col, justify="left" if col in ("phase", "method", "flags") else "right")
    count: dict[str, int] = {}
    for p in res.phases:
        count[p.path] = count.get(p.path, 0) + 1
    summarized = set() if steps else {path for path, n in count.items() if n > SUMMARIZE_OVER}
    shown: set[str] = set()
    for p in (*res.phases, res.total):
        if p.path in summarized and p is not res.total:
            if p.path in shown:
                continue
            shown.add(p.path)
            same = [q for q in res.phases if q.path == p.path]
            codes = sorted({f.code for q in same for f in q.flags})
            cells = {"phase": f"{'  ' * p.depth}{p.name} x{len(same)}\n{'  ' * p.depth}mean, min-max",
                     "time": _stats([q.time_s for q in same], "ms", 1e3),
                     "energy": _stats([q.energy_j for q in same], "J"),
                     "mean power": _stats([q.mean_power_w for q in same], "W"), "method": p.method,
                     "flags": ", ".join(codes)}
        else:
            cells = {"phase": ("  " * p.depth + p.name) if p is not res.total else "[bold]whole window[/]",
                     "time": fmt(p.time_s * 1e3, "ms"), "energy": fmt(p.energy_j, "J"),
                     "± 1σ": fmt(p.energy_uncertainty_j, "J"), "mean power": fmt(p.mean_power_w, "W"),
                     "counter": fmt(p.energy_counter_j, "J"),
                     "samples vs counter": fmt(p.counter_diff_pct, "%", digits=2),
                     "counter discipline": ("raw" if p.discipline_correction_pct is None else
                                            f"{p.discipline_correction_pct:+.2f}% over {p.discipline_coverage:.0%}"),
                     "method": p.method, "flags": ", ".join(f.code for f in p.flags)}
        t.add_row(*(cells.get(c, "-") for c in cols))
    console.print(t)
    if summarized:
        console.print(f"[dim]{', '.join(sorted(summarized))}: {sum(count[x] for x in summarized)} rows summarized "
                      "(`kernelprof report --steps` lists each)[/]")
    if narrow:
        w = res.total
        console.print(f"whole window: counter {fmt(w.energy_counter_j, 'J')}, samples vs counter "
                      f"{fmt(w.counter_diff_pct, '%', digits=2)}, method {w.method} (narrow layout: per-phase "
                      f"counter and discipline columns at >= {NARROW_BELOW} columns, or with --json / --csv)")
    line = flags_summary([f.code for p in (*res.phases, res.total) for f in p.flags])
    if line:
        console.print(line)
    if res.lost_samples:
        console.print(f"[yellow]{res.lost_samples:.0f} buffered samples were lost (the sampler drained late)[/]")
    for s in res.sources:
        if s.get("missing"):
            console.print(f"[dim]GPU {s['gpu']}: no {', '.join(s['missing'])}[/]")
    for n in res.notes:
        console.print(f"[dim]note: {n}[/]")


def _fmt_time(time_s: float) -> str:
    return fmt(time_s * 1e6, "us") if time_s < 1e-3 else fmt(time_s * 1e3, "ms")


def render_kernels(kernels, timeline, *, top: int = 10) -> None:
    """Top kernels by summed GPU time in each top-level phase name (a kernel counts where it starts)."""
    from rich.markup import escape

    from kernelprof.timeline.kernel_trace import kernels_by_phase

    a = kernels.alignment
    t = Table(title=f"GPU kernels by phase (top {top} by GPU time; {len(kernels)} recorded by {kernels.source})")
    widths = {"phase": 14, "calls": 7, "GPU time": 9, "% of phase": 10}
    kernel_width = max(24, console.width - sum(widths.values()) - 16)  # 16: borders and padding
    t.add_column("phase", width=widths["phase"], overflow="fold")
    t.add_column("kernel", width=kernel_width, overflow="fold")  # what the console has left
    for col in ("calls", "GPU time", "% of phase"):
        t.add_column(col, justify="right", width=widths[col], no_wrap=True)
    for ph in kernels_by_phase(kernels, timeline, depth=0, top=top):
        label = escape(ph.phase) + (f" (x{ph.instances})" if ph.instances > 1 else "")
        for k, kt in enumerate(ph.kernels):
            t.add_row(label if k == 0 else "", short_kernel_name(kt.name), str(kt.calls),
                      _fmt_time(kt.gpu_time_s),
                      fmt(100 * kt.gpu_time_s / ph.phase_time_s if ph.phase_time_s else None, "%"))
        t.add_row("", "[dim]all kernels[/]", "", _fmt_time(ph.kernel_time_s),
                  fmt(100 * ph.kernel_time_s / ph.phase_time_s if ph.phase_time_s else None, "%"), end_section=True)
    console.print(t)
    residual = "-" if a.residual_ns is None else f"{a.residual_ns / 1e3:.1f} us"
    console.print(f"[dim]kernel clock: {a.method}, offset {a.offset_ns / 1e3:.1f} us, start-vs-end residual "
                  f"{residual}[/]" + (f"\n[yellow]kernel clock: {a.note}[/]" if a.note else ""))
