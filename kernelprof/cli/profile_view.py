"""Tables of a Profiler run (kind "profile"): per-phase time, energy, power, counter check, flags."""
from __future__ import annotations

from rich.table import Table

from kernelprof.cli.output import console, fmt


def render_run(run) -> None:
    """`kernelprof report` of a profile run: attribution is recomputed from the stored trace."""
    from kernelprof.profiler import load_profile, load_profile_run

    render_profile(load_profile(run.path), title=f"Profile {run.path.name}")
    inputs = load_profile_run(run.path)
    if inputs.kernels is not None:
        render_kernels(inputs.kernels, inputs.timeline)


def render_profile(res, *, title: str = "Profile") -> None:
    t = Table(title=f"{title} ({res.provenance}, sampler: {res.sampler_mode})")
    for col in ("phase", "time", "energy", "± 1σ", "mean power", "counter", "samples vs counter",
                "counter discipline", "method", "flags"):
        t.add_column(col, justify="left" if col in ("phase", "method", "flags") else "right")
    for p in (*res.phases, res.total):
        label = ("  " * p.depth + p.name) if p is not res.total else "[bold]whole window[/]"
        disc = ("raw" if p.discipline_correction_pct is None else
                f"{p.discipline_correction_pct:+.2f}% over {p.discipline_coverage:.0%}")
        t.add_row(label, fmt(p.time_s * 1e3, "ms"), fmt(p.energy_j, "J"), fmt(p.energy_uncertainty_j, "J"),
                  fmt(p.mean_power_w, "W"), fmt(p.energy_counter_j, "J"), fmt(p.counter_diff_pct, "%", digits=2),
                  disc, p.method, ",".join(f.code for f in p.flags))
    console.print(t)
    if res.lost_samples:
        console.print(f"[yellow]{res.lost_samples:.0f} buffered samples were lost (the sampler drained late)[/]")
    for s in res.sources:
        if s.get("missing"):
            console.print(f"[dim]GPU {s['gpu']}: no {', '.join(s['missing'])}[/]")
    for n in res.notes:
        console.print(f"[dim]note: {n}[/]")


def short_kernel_name(name: str, chars: int = 160) -> str:
    """The head of a C++ kernel name without the return type (templates make them 1000+ characters),
    escaped: brackets in C++ names would read as rich markup."""
    from rich.markup import escape

    name = name[5:] if name.startswith("void ") else name
    return escape(name if len(name) <= chars else name[:chars - 1] + "…")


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
    t.add_column("phase", width=widths["phase"], no_wrap=True, overflow="ellipsis")
    t.add_column("kernel", width=kernel_width, no_wrap=True, overflow="ellipsis")  # what the console has left
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
