"""Matplotlib figures (PNG): energy vs time per variant, measured over estimated energy, timelines."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from kernelprof.methods.compare import VariantPoint

if TYPE_CHECKING:
    from kernelprof.methods.llm.result import LLMResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, ax, path: str | Path, title: str) -> Path:
    """Title, legend, layout, write the PNG and free the figure."""
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # outside the data
    fig.tight_layout()
    return _save(fig, path)


def energy_vs_time_png(points: Sequence[VariantPoint], path: str | Path, *, title: str) -> Path:
    """Energy per call against time per call, with iso-power lines (E = P x t).

    A point down-left of another saves both; one left but on a higher iso-power line only saves time.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    t_ms = np.array([p.time_s * 1e3 for p in points])
    e_mj = np.array([p.energy_j * 1e3 for p in points])
    t_lo, t_hi = t_ms.min() * 0.5, t_ms.max() * 1.5
    # Round iso-power lines (each variant's own power is in the legend): lines closer than the
    # variants' spread would only print labels on top of each other.
    top = max(p.power_w for p in points)
    powers = [w for w in (50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 700.0, 1000.0) if w <= 1.5 * top]
    grid = np.linspace(t_lo, t_hi, 50)
    e_lo, e_hi = e_mj.min() * 0.5, e_mj.max() * 1.5
    for watts in powers:
        ax.plot(grid, watts * grid, color="0.85", lw=0.8, zorder=0)  # W x ms = mJ
        t_exit = min(t_hi, e_hi / watts)  # label each line where it leaves the plot (top or right edge)
        if t_exit > t_lo and watts * t_exit > e_lo:
            ax.annotate(f"{watts:.0f} W", (t_exit, watts * t_exit), fontsize=7, color="0.5",
                        xytext=(-22, -9), textcoords="offset points")
    for p in points:
        ax.errorbar(p.time_s * 1e3, p.energy_j * 1e3, xerr=p.time_ci_s * 1e3, yerr=p.energy_ci_j * 1e3,
                    fmt="o", capsize=3, label=f"{p.name} ({p.power_w:.0f} W)")
    ax.set_xlim(t_lo, t_hi)
    ax.set_ylim(e_lo, e_hi)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time per call (ms)")
    ax.set_ylabel("energy per call (mJ)")
    return _finish(fig, ax, path, title)


@dataclass(frozen=True)
class EstimateRow:
    """One measured point against its estimates (joules per call)."""

    label: str
    measured_j: float
    measured_ci_j: float | None          # 95% CI half-width of the measurement, if known
    estimates_j: dict[str, float | None]


def estimate_ratios(rows: Sequence[EstimateRow]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per estimate name: measured / estimate for each row and its 95% CI half-width (NaN where the
    estimate is missing). The estimate is a number without uncertainty, so the CI scales as the
    measurement's: ci(measured / e) = ci(measured) / e."""
    names = sorted({k for r in rows for k, v in r.estimates_j.items() if v})
    out = {}
    for n in names:
        e = np.array([r.estimates_j.get(n) or np.nan for r in rows], dtype=float)
        m = np.array([r.measured_j for r in rows], dtype=float)
        ci = np.array([r.measured_ci_j if r.measured_ci_j is not None else np.nan for r in rows], dtype=float)
        out[n] = (m / e, ci / e)
    return out


def measured_over_estimates_png(rows: Sequence[EstimateRow], path: str | Path, *, title: str) -> Path:
    """Measured / estimate per point and estimate (log axis, 1 = the estimate is exact), with the
    measurement's 95% CI carried into the ratio: a ratio whose bar crosses 1 is not told from exact."""
    plt = _pyplot()
    ratios = estimate_ratios(rows)
    if not ratios:
        raise ValueError("no estimates to compare with")
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.32 * len(rows) + 1.2)), dpi=120)
    y = np.arange(len(rows))
    step = 0.7 / len(ratios)
    for i, (n, (ratio, ci)) in enumerate(ratios.items()):
        ax.errorbar(ratio, y + (i - (len(ratios) - 1) / 2) * step, xerr=np.nan_to_num(ci), fmt="o", ms=4, capsize=2, label=n)
    ax.axvline(1.0, color="0.3", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [r.label for r in rows], fontsize=7)
    ax.invert_yaxis()  # first point on top, as in the report
    ax.set_xlabel("measured / estimate (energy per call; bars: the measurement's 95% CI)")
    return _finish(fig, ax, path, title)


def power_timeline_png(trace, timeline, path: str | Path, *, title: str, depth: int = 0,
                       power_limit_w: float | None = None, idle_w: float | None = None,
                       phase_energy_j: Sequence[float | None] | None = None, lag_s: float = 0.0) -> Path:
    """Power over time with the phases of `depth` shaded, named and (given `phase_energy_j`, one per
    interval of the timeline) annotated with their joules; the power limit and the idle power as
    lines; the SM clock in its own panel with its real range; the legend outside the data.

    Buffered samples are drawn as the window each averages: a step that ends `lag_s` before its stamp."""
    plt = _pyplot()
    g = trace.gpus[0]
    t0 = trace.start_t_us
    fig, (ax, axc) = plt.subplots(2, 1, figsize=(11, 5.5), dpi=120, sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    if len(g.samples_t_us):
        ax.step((g.samples_t_us - t0) / 1e6 - lag_s, g.samples_w, where="pre", lw=1.0,
                label="buffered samples (~20 ms means)")
    if len(g.instant_t_us):
        ax.plot((g.instant_t_us - t0) / 1e6, g.instant_w, ".", ms=3, alpha=0.6, label="instant field")
    if power_limit_w:
        ax.axhline(power_limit_w, color="tab:red", lw=1, ls="--", label=f"power limit ({power_limit_w:.0f} W)")
    if idle_w:
        ax.axhline(idle_w, color="0.5", lw=1, ls=":", label=f"idle ({idle_w:.0f} W)")
    colors = ("#d9e8fb", "#fde2cf", "#dff3dc", "#efdff7")
    names: dict[str, str] = {}
    energies = list(phase_energy_j) if phase_energy_j is not None else [None] * len(timeline.intervals)
    span_s = max(trace.duration_s, 1e-9)
    for iv, e_j in zip(timeline.intervals, energies):
        if iv.depth != depth:
            continue
        c = names.setdefault(iv.name, colors[len(names) % len(colors)])
        a, b = (iv.t0_ns / 1e3 - t0) / 1e6, (iv.t1_ns / 1e3 - t0) / 1e6
        ax.axvspan(a, b, color=c, zorder=0, lw=0)
        if e_j is not None and (b - a) > 0.03 * span_s:  # only where the label fits
            ax.annotate(f"{e_j:.3g} J", ((a + b) / 2, 1.0), xycoords=("data", "axes fraction"), ha="center",
                        va="bottom", fontsize=7)
    for name, c in names.items():
        ax.fill_between([], [], color=c, label=name)  # legend entries for the shaded phases
    sm = g.sm_clock_mhz
    if len(g.state_t_us) and np.isfinite(sm).any():
        axc.plot((g.state_t_us - t0) / 1e6, sm, color="0.3", lw=0.8)
        lo, hi = float(np.nanmin(sm)), float(np.nanmax(sm))
        pad = max(5.0, 0.1 * (hi - lo))
        axc.set_ylim(lo - pad, hi + pad)  # its real range: a 15 MHz dip shows as 15 MHz
    axc.set_ylabel("SM clock (MHz)")
    axc.set_xlabel("time (s, NVML clock, from the trace start)")
    ax.set_ylabel("power (W)")
    ax.set_xlim(0, trace.duration_s)
    ax.set_title(title, fontsize=10, pad=14)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Write the PNG (temp file + rename: a crash leaves no half PNG) and free the figure."""
    from kernelprof.outputs.safe_paths import atomic_write

    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    finally:
        fig.clf()
    _pyplot().close(fig)
    return path


def llm_phases_png(result: "LLMResult", path: str | Path, *, title: str) -> Path:
    """Bars of an llm run: joules per request of prefill and decode, in-run and (where measured)
    looped alone and cycled (the phase fit's reading where there is one, else the integrated)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    phases = result.phases

    def method_j(p, *methods: str) -> float | None:
        return next((e.energy_j for e in map(p.estimate, methods) if e is not None and e.energy_j is not None), None)

    kinds = [("in-run", lambda p: p.energy_inrun_j), ("looped alone", lambda p: method_j(p, "steady")),
             ("cycled", lambda p: method_j(p, "cycle_fit", "cycle")), ("paper estimate", lambda p: p.paper_estimate_j)]
    kinds = [(label, get) for label, get in kinds if any(get(p) is not None for p in phases)]
    width = 0.8 / max(len(kinds), 1)
    x = np.arange(len(phases))
    for i, (label, get) in enumerate(kinds):
        vals = [get(p) if get(p) is not None else np.nan for p in phases]
        bars = ax.bar(x + i * width, vals, width, label=label)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
    ax.set_xticks(x + width * (len(kinds) - 1) / 2, [p.name for p in phases])
    ax.set_ylabel("energy per generate call (J)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return _save(fig, path)


def workload_heatmap_png(bins: Sequence[dict], path: str | Path, *, title: str) -> Path:
    """Joules per request by input-length bin x output-length bin (Fernandez et al.'s figures);
    bins not measured are blank."""
    cells = {(b["input_bin"], b["output_bin"]): (b["energy_per_batch_j"] / b["batch"]
                                                 if b.get("status") == "ok" and b.get("energy_per_batch_j")
                                                 and b.get("batch") else None) for b in bins}
    return _bin_grid_png(cells, path, title=title, label="J per request", fmt="{:.3g}")


def saving_heatmap_png(savings: Sequence[Any], path: str | Path, *, title: str) -> Path:
    """The workload ladder's energy saving (%) per input x output bin (`BinSaving`s); a bin that
    either rung lacks is blank."""
    cells = {tuple(int(x) for x in b.key.split("/")): b.saving_pct for b in savings}
    return _bin_grid_png(cells, path, title=title, label="energy saving, first -> last rung (%)", fmt="{:.0f}%")


def _bin_grid_png(cells: dict[tuple[int, int], float | None], path: str | Path, *, title: str, label: str,
                  fmt: str) -> Path:
    plt = _pyplot()
    ins = sorted({i for i, _ in cells})
    outs = sorted({o for _, o in cells})
    grid = np.full((len(ins), len(outs)), np.nan)
    for (i, o), v in cells.items():
        if v is not None:
            grid[ins.index(i), outs.index(o)] = v
    fig, ax = plt.subplots(figsize=(1.0 * len(outs) + 3, 0.6 * len(ins) + 2), dpi=120)
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="white" if v < np.nanmedian(grid) else "black")
    ax.set_xticks(range(len(outs)), [str(o) for o in outs])
    ax.set_yticks(range(len(ins)), [str(i) for i in ins])
    ax.set_xlabel("output tokens (bin)")
    ax.set_ylabel("input tokens (bin)")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def ladder_png(rungs, path: str | Path, *, title: str) -> Path:
    """Energy per request against time per request for each measured rung (`RungResult`), with
    iso-power lines: a step down and to the left saves energy; a step left along or above its
    iso-power line saves only time."""
    plt = _pyplot()
    pts = [r for r in rungs if r.repeats and r.j_per_request and r.time_per_request_s]
    if not pts:
        raise ValueError("no measured rung to plot")
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    t_s = np.array([r.time_per_request_s for r in pts])
    e_j = np.array([r.j_per_request for r in pts])
    t_lo, t_hi, e_lo, e_hi = t_s.min() * 0.5, t_s.max() * 1.5, e_j.min() * 0.5, e_j.max() * 1.5
    grid = np.geomspace(t_lo, t_hi, 50)
    for watts in (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0):  # ~2x apart, so their labels do not overlap
        ax.plot(grid, watts * grid, color="0.85", lw=0.8, zorder=0)  # W x s = J
        t_exit = min(t_hi, e_hi / watts)
        if t_exit > t_lo and watts * t_exit > e_lo:
            ax.annotate(f"{watts:.0f} W", (t_exit, watts * t_exit), fontsize=7, color="0.5",
                        xytext=(-22, -9), textcoords="offset points")
    ax.plot(t_s, e_j, color="0.6", lw=0.8, zorder=1)  # the climb, rung to rung
    for r in pts:
        ax.plot(r.time_per_request_s, r.j_per_request, "o", label=f"{r.name} (b{r.batch}, {r.mean_power_w:.0f} W)")
    ax.set_xlim(t_lo, t_hi)
    ax.set_ylim(e_lo, e_hi)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GPU time per request (s)")
    ax.set_ylabel("energy per request (J)")
    return _finish(fig, ax, path, title)
