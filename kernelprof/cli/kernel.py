"""`kernelprof kernel <op> --variant ... --shape ... --dtype ...`: joules per call of one kernel."""
from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from rich.table import Table

from kernelprof.cli.output import console, fmt, fmt_si, print_json
from kernelprof.errors import UsageError
from kernelprof.methods.kernel_energy import KernelEnergy, measure_op
from kernelprof.methods.steady_state import MeasureConfig
from kernelprof.outputs.runfile import save_run


def add_measure_options(p: argparse.ArgumentParser) -> None:
    """Options shared by kernel, sweep and compare."""
    p.add_argument("--dtype", default="bf16", help="bf16 (default), fp16, fp32, or fp8 (GEMM on sm_89+)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    p.add_argument("--state", choices=("sustained", "burst"), default="sustained",
                   help="sustained (default): the settled power state of the kernel looped back to back, the "
                        "limiter's transient found and left out; burst: the first --burst-s after idle gaps")
    p.add_argument("--precision", type=float, default=1.0,
                   help="target 95%% CI half-width of energy per call, in %% (default 1)")
    p.add_argument("--run-s", "--window", dest="run_s", type=float, default=3.0,
                   help="sustained: seconds of back-to-back launches before checking for a settled stretch (default 3)")
    p.add_argument("--max-run-s", type=float, default=6.0,
                   help="sustained: longest run when power has not settled (default 6 s)")
    p.add_argument("--burst-s", type=float, default=0.3, help="burst: seconds measured after each idle gap (default 0.3)")
    p.add_argument("--max-seconds", type=float, default=12.0, help="wall-time cap per point (default 12 s)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random inputs and the gaps (default 0)")
    p.add_argument("--paper-peak", choices=("headline", "dense"), default="headline",
                   help="peak for the paper's TDP/peak x FLOPs estimate: the datasheet's headline (with-sparsity) "
                        "figure, as Fernandez et al. used (default), or the dense one")


def config_from_args(args: argparse.Namespace) -> MeasureConfig:
    from kernelprof.validate import check_int_range, check_positive

    check_positive("--precision (%)", args.precision, upper=100)
    for name in ("run_s", "max_run_s", "burst_s", "max_seconds"):
        check_positive(f"--{name.replace('_', '-')}", getattr(args, name), upper=86400)
    check_int_range("--device", args.device, 0, 255)
    return MeasureConfig(state=args.state, run_s=args.run_s, max_run_s=max(args.max_run_s, args.run_s),
                         burst_s=args.burst_s, target_rel_ci=args.precision / 100, max_wall_s=args.max_seconds,
                         seed=args.seed)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kernel", help="measure time and energy per call of one kernel, with estimates beside it")
    p.add_argument("op", nargs="?", help="gemm, attention or decode (or --fn for your own kernel)")
    p.add_argument("--fn", help="your own kernel: MODULE:FUNCTION returning a UserCase (kernelprof.methods.user_case)")
    p.add_argument("--variant", help="implementation (default: the op's first; see --list)")
    p.add_argument("--shape", help="e.g. 4096x4096x4096, 'b=4,h=32,s=4096,d=128,causal', 'b=16,h=32,kv=8,ctx=8192,d=128'")
    p.add_argument("--list", action="store_true", help="list the op's variants, dtypes and default shape, then exit")
    add_measure_options(p)
    p.add_argument("-o", "--out", help="run file to write (default runs/kernel-<op>-<variant>-<time>.json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernels import get_op

    if args.fn or not args.op:
        return run_user_case(args)
    op = get_op(args.op)
    if args.list:
        console.print(f"{op.name}: variants {', '.join(op.variants)}; dtypes "
                      f"{', '.join(str(d).replace('torch.', '') for d in op.dtypes)}; default shape {op.default_shape}")
        return 0
    from kernelprof.validate import check_kernel_request

    _, variant, _, _ = check_kernel_request(op.name, args.variant, args.shape, args.dtype)
    ke = measure_op(op.name, variant, args.shape, args.dtype, device=args.device, config=config_from_args(args),
                    seed=args.seed, paper_convention=args.paper_peak)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"kernel-{op.name}-{variant}-{stamp}.json"
    save_run(out, "kernel", ke.to_json())
    if args.json:
        print_json(ke.to_json())
    else:
        render_kernel(ke)
        console.print(f"saved {out}")
    return 0


def run_user_case(args: argparse.Namespace) -> int:
    """`kernelprof kernel --fn MODULE:FUNCTION`: the same measurement and tables for a user's case."""
    from kernelprof.methods.user_case import USER_PREFIX

    if not args.fn:
        raise UsageError("give an op (gemm, attention, decode) or --fn MODULE:FUNCTION")
    if args.op:
        raise UsageError(f"give an op or --fn, not both (got {args.op!r} and --fn {args.fn})")
    ke = measure_op(USER_PREFIX + args.fn, args.variant, args.shape, args.dtype, device=args.device,
                    config=config_from_args(args), seed=args.seed, paper_convention=args.paper_peak)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"kernel-fn-{args.fn.rpartition(':')[2]}-{stamp}.json"
    save_run(out, "kernel", ke.to_json())
    print_json(ke.to_json()) if args.json else (render_kernel(ke), console.print(f"saved {out}"))
    return 0


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
