"""`kernelprof demo` (what `make run` runs): profile on a GPU, or report a shipped recording without one."""
from __future__ import annotations

import argparse
from pathlib import Path

from kernelprof.cli.output import console

TRACES = Path(__file__).resolve().parent.parent.parent / "traces"
# Shipped real recordings shown without a GPU, most telling first.
SHIPPED = ("llm-llama-3.1-8b-b8-optimized.json", "compare-attention-h100.json", "demo-profile.json",
           "sensor-h100.json", "sensor-h200.json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: profile the subject kernels on a GPU, or show a shipped recording")
    p.add_argument("-o", "--out", default="runs", help="where runs go (default runs/)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.gpu.devices import cuda_available

    return gpu_demo(Path(args.out)) if cuda_available() else shipped_demo()


def shipped_demo() -> int:
    from kernelprof.cli import report

    console.rule("No GPU here: reports of real runs recorded on an H100 (and the H200's sensors) shipped in traces/")
    shown = 0
    for name in SHIPPED:
        path = TRACES / name
        if path.is_file():
            console.rule(str(path.relative_to(TRACES.parent)))
            report.run(argparse.Namespace(path=str(path), json=False))
            shown += 1
    if not shown:
        console.print(f"no shipped recordings found in {TRACES}")
        return 1
    console.print("Run on a machine with an NVIDIA GPU to measure your own; `kernelprof --help` lists the commands.")
    return 0


def gpu_demo(out: Path) -> int:
    import torch

    from kernelprof.cli import info
    from kernelprof.cli.ceilings import run as ceilings_run
    from kernelprof.cli.compare import render_compare
    from kernelprof.methods.compare_variants import compare_variants, save_compare_run
    from kernelprof.methods.kernel_measurement import MeasureConfig
    from kernelprof.cli.profile_view import render_profile
    from kernelprof.profiler import Profiler
    from kernels import get_op

    console.rule("1. The GPU")
    info.run(argparse.Namespace(json=False))
    console.rule("2. What this card really does (cached after the first run)")
    ceilings_run(argparse.Namespace(device=0, refresh=False, json=False))
    console.rule("3. Attention variants: which saves energy, which only time?")
    # 1 s runs and a 5 s cap per variant: a demo, not a benchmark.
    result = compare_variants("attention", "triton,sdpa-flash,sdpa-cudnn", shape="b=4,h=32,s=4096,d=128,causal",
                              dtype="bf16", baseline="sdpa-flash",
                              config=MeasureConfig(run_s=1.0, target_rel_ci=0.01, max_wall_s=5.0, seed=0),
                              on_variant=lambda op, v, shape: console.print(f"measuring {op}/{v} at {shape} ..."),
                              on_failure=lambda v, err: console.print(f"[red]{v} failed:[/] {err}"))
    result, path, png = save_compare_run(result, out / "demo-compare-attention.json")
    render_compare(result.to_json())
    console.print(f"saved {path} and {png}")
    console.rule("4. A phased run: prefill-like attention, then decode steps, attributed by the Profiler")
    attn, dec = get_op("attention"), get_op("decode")
    a_in = attn.make_inputs(attn.parse_shape("b=8,h=32,kv=8,s=2048,d=128,causal"), torch.bfloat16, torch.device("cuda"), 0)
    d_in = dec.make_inputs(dec.parse_shape("b=8,h=32,kv=8,ctx=2048,d=128"), torch.bfloat16, torch.device("cuda"), 0)
    attn.variants["triton"](*a_in)
    dec.variants["triton-splitk"](*d_in)
    torch.cuda.synchronize()
    with Profiler(gpus=[0]) as prof:
        with prof.phase("prefill"):
            for _ in range(200):
                attn.variants["triton"](*a_in)
        with prof.phase("decode"):
            for _ in range(20):
                with prof.phase("step", kind="step"):
                    for _ in range(200):
                        dec.variants["triton-splitk"](*d_in)
    path = prof.save(out / "demo-profile.json")
    render_profile(prof.result(), title="demo phases")
    console.print(f"saved {path}; `kernelprof report {path}` reprints it anywhere")
    return 0
