"""The tables of an LLM run (`kernelprof llm`, `kernelprof report` of an llm run file)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from kernelprof.cli.output import console, fmt

if TYPE_CHECKING:
    from kernelprof.methods.llm.marginal import MarginalResult
    from kernelprof.methods.llm.result import LLMResult, PhaseEnergy


def render_run(run) -> None:
    from kernelprof.methods.llm.result import LLMResult

    render_llm(LLMResult.from_json(run.payload["result"]))
    if run.payload.get("roofline_floor"):
        render_floor(run.payload["roofline_floor"], run.payload["time_per_batch_s"])


def render_floor(floor: dict, time_per_batch_s: float) -> None:
    """One line: time per batch against the roofline floor (kernelprof.methods.llm.floor), with its rates."""
    r = floor["rates"]
    console.print(f"time per batch {fmt(time_per_batch_s, 's')} = {time_per_batch_s / floor['total_s']:.3f}x the "
                  f"roofline floor {fmt(floor['total_s'], 's')} (prefill {fmt(floor['prefill_s'], 's')}, "
                  f"{floor['prefill_bound']}-bound; decode {fmt(floor['decode_s'], 's')}; at the measured copy "
                  f"{r['copy_bytes_per_s'] / 1e12:.2f} TB/s and bf16 matmul {r['matmul_flop_s'] / 1e12:.0f} TFLOP/s)")


def _fit_cell(w: float | None, se: float | None) -> str:
    return "-" if w is None else fmt(w, "W") + (f" ±{se:.0f}" if se is not None else "")


def _pair(a: float | None, b: float | None) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:+.1f}%"
    return f"{pct(a)} / {pct(b)}"


def render_steady(phases: "tuple[PhaseEnergy, ...]") -> None:
    """In-run vs the two steady-state references, each by integration / by the phase fit, with clocks.

    Runs saved before a method was measured show '-' for it.
    """
    from kernelprof.methods.llm.result import gap_pct

    t = Table(title="in-run vs steady state (integrated / fitted; steady power x in-run time, or energy per call)")
    for col in ("phase", "in-run MHz", "looped alone", "alone MHz", "in-run vs alone", "per call", "cycled",
                "cycled MHz", "in-run vs cycled"):
        t.add_column(col, justify="left" if col == "phase" else "right")
    for p in phases:
        steady = p.estimate("steady")
        cycle, cycle_fit = p.estimate("cycle"), p.estimate("cycle_fit")
        cycle_w = None if cycle is None else cycle.power_w
        fit_w, fit_se = (None, None) if cycle_fit is None else (cycle_fit.power_w, cycle_fit.power_se_w)
        cycle_mhz = next((c.sm_clock_mhz for c in (cycle, cycle_fit) if c is not None and c.sm_clock_mhz is not None),
                         None)
        cyc = "-" if cycle_w is None and fit_w is None else f"{fmt(cycle_w, 'W')} / {_fit_cell(fit_w, fit_se)}"
        t.add_row(p.name, fmt(p.sm_clock_inrun_mhz, "MHz"), fmt(None if steady is None else steady.power_w, "W"),
                  fmt(None if steady is None else steady.sm_clock_mhz, "MHz"),
                  _pair(gap_pct(p, "inrun", "steady"), gap_pct(p, "inrun_fit", "steady")),
                  _pair(gap_pct(p, "inrun", "steady", per_call=True), gap_pct(p, "inrun_fit", "steady", per_call=True)),
                  cyc, fmt(cycle_mhz, "MHz"), _pair(gap_pct(p, "inrun", "cycle"), gap_pct(p, "inrun_fit", "cycle_fit")))
    console.print(t)


def render_llm(r: "LLMResult") -> None:
    t = Table(title=f"{r.model} ({r.mode}, GEMM {r.gemm}) batch {r.batch}, {r.input_len} in / "
                    f"{r.output_len} out, {r.requests} generate calls on {r.gpu_name}")
    for col in ("phase", "time", "energy in-run", "mean W", "fit W", "J/token in-run", "paper estimate",
                "measured / paper", "flags"):
        t.add_column(col, justify="left" if col in ("phase", "flags") else "right")
    for p in r.phases:
        ratio = p.energy_inrun_j / p.paper_estimate_j if p.energy_inrun_j and p.paper_estimate_j else None
        fit = p.estimate("inrun_fit")
        j_token = p.j_per_token_inrun
        t.add_row(p.name, fmt(p.time_s, "s"), fmt(p.energy_inrun_j, "J"), fmt(p.mean_power_inrun_w, "W"),
                  "-" if fit is None else _fit_cell(fit.power_w, fit.power_se_w),
                  fmt(None if j_token is None else j_token * 1e3, "mJ"),
                  fmt(p.paper_estimate_j, "J"), fmt(ratio, "x"), ",".join(p.flags))
    console.print(t)
    if any(s is not None and s.power_w is not None for s in (p.estimate("steady") for p in r.phases)):
        render_steady(r.phases)
    phases_j = sum(p.energy_inrun_j or 0 for p in r.phases)
    total = r.total_energy_inrun_j
    console.print(f"whole window {fmt(total, 'J')} over {fmt(r.total_time_s, 's')}; phases add "
                  f"up to {fmt(phases_j, 'J')} ({fmt(100 * phases_j / total, '%') if total else '-'})"
                  f"; energy counter {fmt(r.counter_energy_j, 'J')} (samples vs counter "
                  f"{fmt(r.counter_vs_samples_pct, '%', digits=2)})")
    console.print(f"per request {fmt(r.j_per_request_inrun, 'J')}; measured / paper estimate (TDP / "
                  f"{r.paper_peak_convention} peak x FLOPs) "
                  f"{fmt(r.paper_ratio, 'x')} (the paper saw 2.0-6.1x for unoptimized PyTorch, 1.27-1.64x for vLLM, on A6000)")
    for n in r.notes:
        console.print(f"[dim]note: {n}[/]")


def render_marginals_run(run) -> None:
    from kernelprof.methods.llm.marginal import MarginalResult

    render_marginals(MarginalResult.from_json(run.payload["result"]))


def render_marginals(r: "MarginalResult") -> None:
    """Per phase: each class's marginal J per call (run twice minus baseline), and what no class explains."""
    for ph, base in r.baseline_j_per_call.items():
        per = "prefill" if ph == "prefill" else "decode step"
        t = Table(title=f"{r.model} batch {r.batch}, {r.input_len} in / {r.output_len} out on {r.gpu_name}: {ph}, "
                        f"{fmt(base, 'J')} per {per} (baselines {r.repeat_pct[ph]:.2f}% apart)")
        for col in ("class", "J per call", "% of the call", "extra time", "clock vs baseline", "flags"):
            t.add_column(col, justify="left" if col in ("class", "flags") else "right")
        for m in (m for m in r.marginals if m.phase == ph):
            t.add_row(m.kernel_class, fmt(m.energy_per_call_j, "J"), fmt(m.share_pct, "%"),
                      fmt(None if m.time_per_call_s is None else m.time_per_call_s * 1e3, "ms"),
                      fmt(m.clock_shift_pct, "%"), ",".join(m.flags))
        un = r.unexplained_j_per_call(ph)
        t.add_row("(no class: copies, gaps, the rest)", fmt(un, "J"), fmt(None if un is None else 100 * un / base, "%"),
                  "", "", "")
        console.print(t)
    console.print("[dim]marginal = J per call with every kernel of the class launched twice, minus the baseline's: "
                  "the class's joules in this program's power state; not_resolved = within twice the baselines' "
                  "spread; clock_shift = the variant's phase ran > 3% off the baseline's mean SM clock[/]")
