"""`kernelprof kernel <op> --variant ... --shape ... --dtype ...`: joules per call of one kernel."""
from __future__ import annotations

import argparse

from kernelprof.cli.kernel_view import render_kernel
from kernelprof.cli.output import console, print_json
from kernelprof.errors import UsageError
from kernelprof.methods.kernel_energy import measure_op, save_kernel_run
from kernelprof.methods.steady_state import MeasureConfig


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
    out = save_kernel_run(ke, args.out)
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
    out = save_kernel_run(ke, args.out)
    print_json(ke.to_json()) if args.json else (render_kernel(ke), console.print(f"saved {out}"))
    return 0
