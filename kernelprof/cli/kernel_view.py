"""Tables of one kernel's measurement (`kernelprof kernel`, and `kernelprof report` of its run file):
time, power and energy per call with their uncertainty, then the estimates beside them."""
from __future__ import annotations

from rich.table import Table

from kernelprof.cli.output import console, fmt, fmt_si
from kernelprof.methods.kernel_energy import KernelEnergy


def render_run(run) -> None:
    """`kernelprof report` of a kind="kernel" run file."""
    render_kernel(KernelEnergy.from_json(run.payload))


def _state_note(m: dict) -> str:
    if m.get("state") == "sustained":
        return (f"settled after {fmt(m['transient_s'], 's')}; {fmt(m['settled_s'], 's')} measured of a "
                f"{fmt(m['run_s'], 's')} run; drift {fmt(m['drift_pct'], '%')}")
    if m.get("state") == "burst":
        return f"first {fmt(m['config'].get('burst_s'), 's')} after idle, {len(m['batches'])} bursts"
    return "1 s trials after idle gaps, 0.25 s ramp dropped (the method before 0.2)"


def render_kernel(ke: KernelEnergy) -> None:
    m = ke.m
    t = Table(title=f"{ke.op} {ke.variant} {ke.shape} {ke.dtype} on {ke.gpu_name}", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_column()
    ci = lambda v, c, u, s=1.0: f"{fmt(v * s, u)} ± {fmt(c * s, '', digits=2)}" if v is not None and c is not None else "-"  # noqa: E731
    t.add_row("state", m.get("state", "sustained (pre-0.2 trials)"), _state_note(m))
    t.add_row("time per call", ci(m["time_per_call_s"], m["time_ci_s"], "us", 1e6), "CUDA events over the measured stretch, 95% CI")
    t.add_row("throughput", fmt_si(m["achieved_flop_s"], "FLOP/s"), fmt_si(m["achieved_bytes_s"], "B/s") + " of minimum bytes")
    t.add_row("% of roofline", fmt(100 * ke.roofline_fraction, "%") if ke.roofline_fraction else "-", ke.roofline_basis)
    t.add_row("mean power", fmt(m["mean_power_w"], "W"), f"idle {fmt(m['idle_power_w'], 'W')} ({m['idle_kind']})")
    t.add_row("energy per call", ci(m["energy_per_call_j"], m["energy_ci_j"], "mJ", 1e3),
              f"{m['method']}, from the {m.get('energy_source', m['source'])}")
    t.add_row("dynamic energy per call", fmt(None if m["dynamic_energy_per_call_j"] is None else m["dynamic_energy_per_call_j"] * 1e3, "mJ"),
              "above the idle baseline")
    samples = m.get("samples_energy_per_call_j")
    t.add_row("samples per call", fmt(None if samples is None else samples * 1e3, "mJ"),
              "samples vs counter: " + (fmt(m["counter_vs_samples_pct"], "%") if m["counter_vs_samples_pct"] is not None else "-"))
    t.add_row("J per TFLOP", fmt(ke.j_per_tflop, "J"), f"{fmt(ke.pj_per_flop, 'pJ/FLOP')}, {fmt(ke.pj_per_byte, 'pJ/byte')}")
    parts = m.get("batches", m.get("trials", []))
    t.add_row("batches" if "batches" in m else "trials", str(len(parts)),
              f"{m['calls_per_launch']} calls per launch, {m['input_sets']} input sets, {fmt(m['wall_s'], 's')} wall")
    console.print(t)
    e = Table(title="Estimates (per call)")
    for col in ("estimate", "energy", "measured / estimate", "peak", "formula", "note"):
        e.add_column(col, justify="right" if col in ("energy", "measured / estimate") else "left")
    for est in ke.estimates:
        e.add_row(est.name, fmt(None if est.energy_j is None else est.energy_j * 1e3, "mJ"),
                  fmt(est.ratio, "x"), est.convention or "-", est.formula, est.note)
    console.print(e)
    for f in m["flags"]:
        console.print(f"[yellow]flag {f['code']}:[/] {f['message']}")
    for n in m["notes"]:
        console.print(f"[dim]note: {n}[/]")
