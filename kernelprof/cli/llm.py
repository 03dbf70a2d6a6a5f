"""`kernelprof llm --model llama-3.1-8b --batch 8 --input-len 512 --output-len 128 [--mode ...]`."""
from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from kernelprof.cli.output import console, fmt, print_json
from kernelprof.errors import UsageError

if TYPE_CHECKING:
    from kernelprof.methods.llm.result import LLMResult, PhaseEnergy


def register(sub: argparse._SubParsersAction) -> None:
    from kernelprof.methods.llm.config import CONFIGS

    p = sub.add_parser("llm", help="prefill vs decode energy of batched generation on a Llama-shaped model")
    p.add_argument("--model", default="llama-3.1-8b", choices=sorted(CONFIGS), help="model shape (random weights)")
    p.add_argument("--batch", type=int, default=8, help="requests generated together")
    p.add_argument("--input-len", type=int, default=512, help="prompt tokens per request")
    p.add_argument("--input", dest="input_len", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--output-len", type=int, default=128, help="generated tokens per request (fixed, no EOS)")
    p.add_argument("--output", dest="output_len", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="optimized", help="optimized (Triton kernels, CUDA-graph decode), eager, or both")
    p.add_argument("--gemm", default="cublas", choices=["cublas", "triton"], help="GEMM implementation in the model")
    p.add_argument("--no-steady", action="store_true", help="skip the steady-state cross-check of each phase")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("-o", "--out", help="run file prefix (default runs/llm-<model>-<time>); a .trace.json goes beside it")
    p.add_argument("--kernel-slices", action="store_true",
                   help="also record every GPU kernel (torch.profiler / CUPTI, CUDA-graph replays included) and show "
                        "them in the .trace.json on the phases' clock. Off by default: CUPTI tracing slows kernel "
                        "launches a little, so the measured run stays clean without it")
    p.add_argument("--min-inrun-s", type=float, default=10.0,
                   help="repeat the request in-run for at least this long (at most 20 times; 0: one request). The "
                        "phase fit needs many short phases: with 2 s, a batch-1 prefill read 7%% off the steady "
                        "state, with 10 s 0.7%%")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel over N GPUs, launched through torchrun "
                   "(NCCL_NVLS_ENABLE=0); per-GPU energy per phase, in-run only")
    p.add_argument("--tp-requests", type=int, default=3, help="with --tp: generate calls measured")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.methods.llm.run import parse_mode, run_llm
    from kernelprof.outputs.perfetto import trace_of_profile_run
    from kernelprof.methods.llm.cycle import cycle_profile_path
    from kernelprof.outputs.runfile import load_run, save_run

    from kernelprof.validate import check_llm_request

    check_llm_request(args.model, args.batch, args.input_len, args.output_len, args.mode)
    if not args.min_inrun_s >= 0:  # also refuses nan
        raise UsageError(f"--min-inrun-s must be >= 0, got {args.min_inrun_s}")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = Path(args.out) if args.out else Path("runs") / f"llm-{args.model}-{stamp}"
    if args.tp != 1:
        from kernelprof.cli.llm_tp import run_tp

        return run_tp(args, prefix)
    results = []
    for mode in parse_mode(args.mode):
        # Names by concatenation: model names hold dots ("llama-3.1-8b") that with_suffix would cut.
        stem = prefix.parent / f"{prefix.name}-{mode}"
        run_path, profile, trace_path = (Path(f"{stem}{ext}") for ext in (".json", ".profile.json", ".trace.json"))
        r = run_llm(args.model, args.batch, args.input_len, args.output_len, mode=mode, gemm=args.gemm,
                    steady=not args.no_steady, device=args.device, profile_path=str(profile),
                    kernel_slices=args.kernel_slices, min_inrun_s=args.min_inrun_s)
        trace_of_profile_run(profile, trace_path, title=f"{args.model} {mode}")
        save_run(run_path, "llm", {"result": r.to_json(), "profile": profile.name},
                 environment=load_run(profile).environment)
        results.append(r.to_json())
        if not args.json:
            render_llm(r)
            console.print(f"saved {run_path}, {profile} and {trace_path} (open in ui.perfetto.dev)")
            cyc = Path(cycle_profile_path(str(profile)))
            if cyc.exists():
                console.print(f"saved {cyc} (the cycled steady-state reference's profile)")
    if args.json:
        print_json(results)
    return 0


def render_run(run) -> None:
    from kernelprof.methods.llm.result import LLMResult

    render_llm(LLMResult.from_json(run.payload["result"]))


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
