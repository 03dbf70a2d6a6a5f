"""`kernelprof counters` (Nsight Compute counters beside the analytic counts) and
`kernelprof utilization` (NVML's GPU utilization beside the achieved fraction of peak).

Both save run files of kind "counters" (payload {"counters": ..., "utilization": ...}, either may be
None); `render_counters(run)` (kernelprof.cli.counters_view) prints one again, for `kernelprof report`.
"""
from __future__ import annotations

import argparse

# render_counters re-exported: `kernelprof report` and tests import it from here.
from kernelprof.cli.counters_view import render_counters, render_payload  # noqa: F401
from kernelprof.cli.output import console, print_json
from kernelprof.methods.counters_run import (CountersRun, counters_with_utilization, energy_sources,
                                             save_counters_run, utilization_only)


def _kernel_args(p: argparse.ArgumentParser, op_optional: bool = False) -> None:
    if op_optional:
        p.add_argument("op", nargs="?", help="gemm, attention or decode (not with --energy)")
    else:
        p.add_argument("op", help="gemm, attention or decode")
    p.add_argument("--variant", help="implementation (default: the op's first, e.g. triton)")
    p.add_argument("--shape", help="e.g. 4096x4096x4096, b=4,h=32,s=4096,d=128,causal, b=16,h=32,kv=8,ctx=8192,d=128 "
                                   "(default: the op's default shape)")
    p.add_argument("--dtype", default="bf16", help="bf16, fp16, fp32 or fp8 (default bf16)")
    p.add_argument("--seed", type=int, default=0, help="input seed (default 0)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("-o", "--out", metavar="PATH", help="save a run file (kind 'counters') to PATH")
    p.add_argument("--save", dest="out", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("counters", help="profile one kernel call under Nsight Compute and set its counters "
                                        "(FLOPs, DRAM bytes, L2, occupancy) beside the analytic counts")
    _kernel_args(p, op_optional=True)
    p.add_argument("--energy", action="store_true",
                   help="instead of ncu: NVML's energy counter, buffered samples, instant and 1 s average fields "
                        "side by side over a steady load and square waves (reuses `kernelprof sensor`)")
    p.add_argument("--from", dest="from_run", metavar="SENSOR_RUN",
                   help="with --energy: take the loads from a saved `kernelprof sensor --out` run (no GPU needed)")
    p.add_argument("--utilization", action="store_true",
                   help="also show NVML's GPU utilization beside the achieved fraction of peak FLOP/s")
    p.add_argument("--window-s", type=float, default=2.0, help="with --utilization: seconds sampled")
    p.add_argument("--window", dest="window_s", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--cache-control", choices=("all", "none"), default="all",
                   help="ncu's cache control: 'all' flushes L2 before the kernel (default), 'none' keeps it warm")
    p.add_argument("--ncu", help="path of ncu (default: $KERNELPROF_NCU, else ncu on the PATH)")
    p.add_argument("--timeout-s", type=float, default=600.0, help="give up on ncu after this long (default 600)")
    p.add_argument("--ncu-output", metavar="PATH", help="also write ncu's raw text output to PATH")
    p.set_defaults(handler=run_counters)

    u = sub.add_parser("utilization", help="NVML's GPU utilization while a kernel runs back to back, beside its "
                                           "achieved fraction of peak FLOP/s and bandwidth")
    _kernel_args(u)
    u.add_argument("--window-s", type=float, default=2.0, help="seconds sampled after a 1 s ramp")
    u.add_argument("--window", dest="window_s", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    u.add_argument("--sample-hz", type=float, default=20.0, help="NVML reads per second (default 20)")
    u.set_defaults(handler=run_utilization)


def _finish(args: argparse.Namespace, run: CountersRun) -> int:
    doc = run.to_json()
    if args.out:
        path = save_counters_run(run, args.out)
        if not args.json:
            console.print(f"saved {path}")
    if args.json:
        print_json(doc)
    else:
        render_payload(doc)
    return 0


def run_counters(args: argparse.Namespace) -> int:
    if args.energy:
        return run_energy(args)
    from kernelprof.errors import UsageError

    if args.from_run:
        raise UsageError("--from goes with --energy")
    if not args.op:
        raise UsageError("counters needs an op (gemm, attention or decode), or --energy")
    return _finish(args, counters_with_utilization(
        args.op, args.variant, args.shape, args.dtype, ncu=args.ncu, device=args.device,
        cache_control=args.cache_control, timeout_s=args.timeout_s, seed=args.seed, raw_output_path=args.ncu_output,
        utilization=args.utilization, window_s=args.window_s))


def run_energy(args: argparse.Namespace) -> int:
    return _finish(args, energy_sources(args.from_run))


def run_utilization(args: argparse.Namespace) -> int:
    return _finish(args, utilization_only(args.op, args.variant, args.shape, args.dtype, window_s=args.window_s,
                                          device=args.device, sample_hz=args.sample_hz, seed=args.seed))
