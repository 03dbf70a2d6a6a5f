"""`kernelprof run [options] -- python script.py ARGS`: profile any program (see kernelprof.methods.program)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kernelprof.cli.output import console, print_json

EPILOG = """\
examples:
  kernelprof run -- python train.py --epochs 1
  kernelprof run -m mypkg.bench -- --size 4096
  kernelprof run --no-kernels -- ./my_cuda_binary     (power and whole-run energy only)

The program runs in this Python process (as `python script.py` would), inside the Profiler: the
power sampler, CUPTI's kernel record and its NVTX ranges (torch.cuda.nvtx.range_push/pop, range)
or kernelprof.phase("name") as nested phases. It prints the whole run's energy with its idle
(baseline x time) and dynamic parts, the energy per range, and per kernel class and kernel from a
regression of each ~20 ms sample window's energy on the kernels that ran in it. A class the windows
cannot tell apart is shown as "not identifiable", never as a measured figure. The program's exit
status is kernelprof's; the profile is saved when it raises or is interrupted (flagged), and its
traceback is printed after. `kernelprof report RUN --by range|kernel|class` reprints it anywhere.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="profile any program: energy per NVTX range and per kernel class",
                       description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", default="0", help="CUDA indices to sample power on, comma-separated (default 0)")
    p.add_argument("-o", "--out", help="run file (default runs/run-<script>-<time>.json); the trace goes beside it")
    p.add_argument("--kernels", action=argparse.BooleanOptionalAction, default=True,
                   help="record every kernel through CUPTI (default on; it slows launches a little)")
    p.add_argument("--warmup-s", type=float, default=0.0,
                   help="leave the program's first seconds (start-up, compilation) out of the kernel regression")
    p.add_argument("--idle-s", type=float, default=0.5, help="idle baseline before the program (default 0.5 s)")
    p.add_argument("--class", dest="classes", action="append", default=[], metavar="GROUP=REGEX",
                   help="put kernels whose name matches REGEX in class GROUP (repeatable; before the auto groups)")
    p.add_argument("-m", dest="module", help="run a module, as `python -m MODULE`")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- python script.py ARGS (or any executable)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.errors import UsageError
    from kernelprof.methods.program import ProgramSpec, RunOptions, parse_command, profile_program
    from kernelprof.methods.program_summary import summarize_program

    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    spec = ProgramSpec("module", args.module, tuple(cmd)) if args.module else parse_command(cmd)
    try:
        gpus = tuple(int(x) for x in str(args.gpus).split(",") if x.strip())
    except ValueError:
        raise UsageError(f"--gpus takes CUDA indices like 0 or 0,1; got {args.gpus!r}") from None
    if args.warmup_s < 0 or args.idle_s < 0:
        raise UsageError("--warmup-s and --idle-s cannot be negative")
    opts = RunOptions(gpus=gpus, out=Path(args.out) if args.out else None, kernels=args.kernels,
                      warmup_s=args.warmup_s, idle_s=args.idle_s, class_overrides=tuple(args.classes))
    result = profile_program(spec, opts)
    summary = summarize_program(result.run_path)
    if args.json:
        print_json(summary.to_json())
    else:
        from kernelprof.cli.program_view import render_summary

        render_summary(summary)
        console.print(f"run file: {result.run_path}" + (f", trace: {result.trace_path}" if result.trace_path else ""))
    if result.outcome.traceback_text:
        sys.stderr.write(f"\nthe program raised (profile saved above, flagged program_raised):\n")
        sys.stderr.write(result.outcome.traceback_text)
    elif result.outcome.status == "interrupted":
        sys.stderr.write("the program was interrupted (profile saved, flagged program_interrupted)\n")
    return result.outcome.exit_code
