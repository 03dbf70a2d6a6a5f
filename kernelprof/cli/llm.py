"""`kernelprof llm --model llama-3.1-8b --batch 8 --input-len 512 --output-len 128 [--mode ...]`."""
from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from kernelprof.cli.output import console, print_json
from kernelprof.errors import UsageError

from kernelprof.cli.llm_view import render_floor, render_llm, render_run, render_steady  # noqa: F401 - re-exported


def register(sub: argparse._SubParsersAction) -> None:
    from kernelprof.methods.llm.config import CONFIGS

    p = sub.add_parser("llm", help="prefill vs decode energy of batched generation on a Llama-shaped model")
    p.add_argument("--model", default="llama-3.1-8b", choices=sorted(CONFIGS), help="model shape (random weights)")
    p.add_argument("--batch", type=int, default=8, help="requests generated together")
    p.add_argument("--input-len", type=int, default=512, help="prompt tokens per request")
    p.add_argument("--input", dest="input_len", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--output-len", type=int, default=128, help="generated tokens per request (fixed, no EOS)")
    p.add_argument("--output", dest="output_len", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="optimized", help="optimized (Triton kernels, CUDA-graph decode), eager, or both; the ladder's middle rungs: "
                        "eager-graphs (eager references, static-cache decode in a CUDA graph), eager-graphs-fused (+ fused pointwise)")
    p.add_argument("--gemm", default="cublas", choices=["cublas", "triton", "fp8"], help="GEMM implementation in the model (fp8: e4m3 weights, row-wise scales, LM head bf16)")
    p.add_argument("--no-steady", action="store_true", help="skip the steady-state cross-check of each phase")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the roofline floor (the card's copy bandwidth and bf16 matmul rate, measured in ~2 s)")
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
    p.add_argument("--class-marginals", nargs="?", const="gemm,attention,pointwise", metavar="CLASSES",
                   help="joules per kernel class in each phase by running one class twice per variant (baseline, "
                        "each class, baseline; optimized mode, in-run only; ~5 runs): for programs whose 20 ms "
                        "power windows cannot tell the classes apart (default classes: gemm,attention,pointwise)")
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
    if args.class_marginals:
        return _run_marginals(args, prefix)
    results = []
    for mode in parse_mode(args.mode):
        # Names by concatenation: model names hold dots ("llama-3.1-8b") that with_suffix would cut.
        stem = prefix.parent / f"{prefix.name}-{mode}"
        run_path, profile, trace_path = (Path(f"{stem}{ext}") for ext in (".json", ".profile.json", ".trace.json"))
        r = run_llm(args.model, args.batch, args.input_len, args.output_len, mode=mode, gemm=args.gemm,
                    steady=not args.no_steady, device=args.device, profile_path=str(profile),
                    kernel_slices=args.kernel_slices, min_inrun_s=args.min_inrun_s)
        trace_of_profile_run(profile, trace_path, title=f"{args.model} {mode}")
        payload = {"result": r.to_json(), "profile": profile.name, **_floor(args, r)}
        save_run(run_path, "llm", payload, environment=load_run(profile).environment)
        results.append({**r.to_json(), **{k: v for k, v in payload.items() if k != "result"}})
        if not args.json:
            render_llm(r)
            if "roofline_floor" in payload:
                render_floor(payload["roofline_floor"], payload["time_per_batch_s"])
            console.print(f"saved {run_path}, {profile} and {trace_path} (open in ui.perfetto.dev)")
            cyc = Path(cycle_profile_path(str(profile)))
            if cyc.exists():
                console.print(f"saved {cyc} (the cycled steady-state reference's profile)")
    if args.json:
        print_json(results)
    return 0


def _floor(args: argparse.Namespace, r) -> dict:
    """The batch's roofline floor from rates measured now, on the same card (issue 17's e2e target)."""
    if args.no_floor:
        return {}
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.floor import measure_rates, roofline_floor

    import torch

    try:
        rates = measure_rates(args.device)
    except torch.cuda.OutOfMemoryError as exc:  # the run is saved either way; the floor is a bonus
        console.print(f"[yellow]note: no roofline floor: its 2.3 GiB of buffers did not fit ({str(exc).splitlines()[0]})[/]")
        return {}
    floor = roofline_floor(get_config(args.model), args.batch, args.input_len, args.output_len, rates)
    return {"roofline_floor": floor.to_json(), "time_per_batch_s": sum(p.time_s for p in r.phases) / r.requests}


def _run_marginals(args: argparse.Namespace, prefix: Path) -> int:
    from kernelprof.cli.llm_view import render_marginals
    from kernelprof.methods.llm.marginal import measure_class_marginals
    from kernelprof.outputs.runfile import save_run

    if args.mode != "optimized":
        raise UsageError("--class-marginals runs the optimized mode only (its kernels are the duplicable ones)")
    if args.kernel_slices:
        raise UsageError("--class-marginals compares in-run energies; run --kernel-slices separately (CUPTI "
                         "would perturb the variants' timing unequally)")
    classes = tuple(c.strip() for c in args.class_marginals.split(",") if c.strip())
    if not classes:
        raise UsageError("--class-marginals needs class names (gemm, attention, pointwise), or none for all three")
    r = measure_class_marginals(args.model, args.batch, args.input_len, args.output_len, classes=classes,
                                min_inrun_s=args.min_inrun_s, device=args.device, gemm=args.gemm)
    path = Path(f"{prefix}-marginals.json")
    save_run(path, "llm-marginals", {"result": r.to_json()})
    if args.json:
        print_json(r.to_json())
    else:
        render_marginals(r)
        console.print(f"saved {path}")
    return 0
