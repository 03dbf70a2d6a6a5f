#!/usr/bin/env python
"""Does the L2 flush bill its own write-back to the kernel it precedes?

    PYTHONPATH=. python benchmarks/flush_bias.py [--out DIR] [--rounds 3]

do_bench's flush (and kernelprof's `cache="flush"`, and the tuners' default) zeroes 256 MB before each
timed call. That leaves L2 full of dirty lines (50 MB on an H200), which the timed call writes back to
HBM as its own reads evict them. A reading sweep (`cache="flush-read"`, the tuners' `--flush read`)
evicts as well and leaves only clean lines. The reference shares no flush code with either: "rotate"
cycles through copies of the inputs (4 x L2 in all) replayed from one CUDA graph, so each call finds
its inputs out of L2 and L2 holds the previous calls' inputs (clean) and outputs (small).

Per case, interleaved over --rounds rounds so a clock drift hits every method alike:
- `events-flush`, `events-flush-read`: kernelprof.timeline.cuda_timing.time_cuda, one launch per pair of events;
- `graph-write`, `graph-read`: benchmarks/tuning.Timer (graph replays), as the tuners time;
- `rotate-graph`: time_cuda(cache="rotate", graph_calls=...), the reference.
Writes benchmarks/results/flush-bias-<gpu>.json: per case each method's median us, and
`<case>/write_minus_read_us`, `<case>/read_vs_rotate_pct`, `<case>/write_vs_rotate_pct`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.tuning import Timer, error_line  # noqa: E402
from kernelprof.outputs.benchfile import Case, write_results  # noqa: E402
from kernelprof.timeline.cuda_timing import rotating_input_sets, time_cuda  # noqa: E402


def cases() -> list[tuple[str, Callable[[], tuple[Callable[..., Any], tuple, int]]]]:
    """(name, builder); a builder returns (fn, args, bytes the call must move at least)."""
    from kernels.decode import decode_attention, decode_min_bytes, decode_sdpa
    from kernels.gemm import gemm, gemm_min_bytes

    def decode(b: int, n: int, sdpa: bool):
        def build():
            q = torch.randn(b, 32, 128, device="cuda", dtype=torch.bfloat16)
            k = torch.randn(b, 8, n, 128, device="cuda", dtype=torch.bfloat16)
            v = torch.randn_like(k)
            lengths = torch.full((b,), n, dtype=torch.int32, device="cuda")
            fn = (lambda q, k, v, ln: decode_sdpa(q, k, v, ln, None, backend="cudnn")) if sdpa else decode_attention
            return fn, (q, k, v, lengths), decode_min_bytes(32, 8, 128, [n] * b, torch.bfloat16)
        return build

    def skinny(m: int, n: int, k: int, cublas: bool):
        def build():
            a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            w = torch.randn(k, n, device="cuda", dtype=torch.bfloat16) / k ** 0.5
            return (torch.matmul if cublas else gemm), (a, w), gemm_min_bytes(m, n, k, torch.bfloat16)
        return build

    def copy(nbytes: int):
        def build():
            x = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
            y = torch.empty_like(x)
            return (lambda y, x: y.copy_(x)), (y, x), 2 * nbytes
        return build

    return [
        ("decode-b1-ctx32768/triton", decode(1, 32768, False)),
        ("decode-b1-ctx32768/sdpa-cudnn", decode(1, 32768, True)),
        ("decode-b1-ctx8192/triton", decode(1, 8192, False)),
        ("gemm-bf16-64x4096x4096/triton", skinny(64, 4096, 4096, False)),
        ("gemm-bf16-64x4096x4096/cublas", skinny(64, 4096, 4096, True)),
        ("gemm-bf16-16x28672x4096/cublas", skinny(16, 28672, 4096, True)),
        ("copy-32mib", copy(32 << 20)),
        ("gemm-bf16-4096x4096x4096/cublas", skinny(4096, 4096, 4096, True)),
    ]


def measure_case(fn: Callable[..., Any], args: tuple, nbytes: int, rounds: int) -> dict[str, list[float]]:
    """Median us per method per round."""
    sets = rotating_input_sets(args)
    graph_calls = len(sets) * max(1, -(-8 // len(sets)))  # whole passes over the sets, >= 8 calls
    timers = {"graph-write": Timer(flush="write"), "graph-read": Timer(flush="read")}
    out: dict[str, list[float]] = {m: [] for m in ("events-flush", "events-flush-read", "graph-write",
                                                   "graph-read", "rotate-graph")}
    for _ in range(rounds):
        for cache in ("flush", "flush-read"):
            out[f"events-{cache}"].append(time_cuda(fn, *args, cache=cache, budget_ms=60).median_ms * 1e3)
        for name, timer in timers.items():
            out[name].append(timer.time(lambda: fn(*args), nbytes).median_ms * 1e3)
        t = time_cuda(fn, *args, input_sets=sets, cache="rotate", graph_calls=graph_calls, budget_ms=60)
        out["rotate-graph"].append(t.median_ms * 1e3)
    del sets
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", type=Path, default=None, help="also copy the results file here")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("flush_bias: needs a CUDA GPU (none visible)", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    results: list[Case] = []
    notes: dict[str, Any] = {"rounds": args.rounds, "per_case": {}, "failures": [],
                             "methods": __doc__.split("Per case")[1].split("Writes")[0].strip()}
    for name, build in cases():
        try:
            fn, fargs, nbytes = build()
            fn(*fargs)
            torch.cuda.synchronize()
            per = measure_case(fn, fargs, nbytes, args.rounds)
        except Exception as exc:  # noqa: BLE001 - OOM or a refused backend: record it and go on
            notes["failures"].append({"case": name, "error": error_line(exc)})
            print(f"{name}: FAILED {error_line(exc)}", flush=True)
            torch.cuda.empty_cache()
            continue
        med = {m: statistics.median(v) for m, v in per.items()}
        notes["per_case"][name] = {"bytes": nbytes, "median_us": {m: round(v, 3) for m, v in med.items()},
                                   "rounds_us": {m: [round(x, 3) for x in v] for m, v in per.items()}}
        ref = med["rotate-graph"]
        results += [
            Case(name=f"{name}/write_minus_read_us", metric="us", value=round(med["graph-write"] - med["graph-read"], 3)),
            Case(name=f"{name}/read_vs_rotate_pct", metric="pct", value=round(100 * (med["graph-read"] / ref - 1), 3),
                 baseline="rotate-graph", baseline_value=round(ref, 3)),
            Case(name=f"{name}/write_vs_rotate_pct", metric="pct", value=round(100 * (med["graph-write"] / ref - 1), 3),
                 baseline="rotate-graph", baseline_value=round(ref, 3)),
        ]
        print(f"{name:36s} " + "  ".join(f"{m} {v:8.2f}" for m, v in med.items()), flush=True)
        del fn, fargs
        torch.cuda.empty_cache()
    path = write_results("flush-bias", results, notes=notes)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / path.name).write_text(path.read_text())
    print(f"wrote {path}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
