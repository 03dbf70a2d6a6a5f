"""Is `measure_kernel` right? Each case against an independent sustained reference, and Zeus beside it.

For each case, in one run on one GPU:
1. kernelprof: `measure_kernel` with default settings, 5 times (its CV and wall time);
2. the reference (benchmarks/sustained_reference.py, no code shared with the method beyond
   pynvml): the same callable with the same launch method (graph of the same k calls, or direct),
   back to back, 3 s warm, then joules per call over 20 s from the energy counter pinned to its
   updates;
3. Zeus 0.16 `zeus.profile.measure` (5 trials of 2 s, 0.5 s cooldown), when it imports.
Cases are named `<case>/error_vs_reference_pct`, `<case>/cv_pct`, `<case>/wall_s`,
`<case>/zeus_error_vs_reference_pct`, `<case>/zeus_wall_s`. Targets (issue 12): |error| <= 1%,
CV <= 0.5%, median wall <= 6 s.

    PYTHONPATH=. python benchmarks/accuracy.py [--cases gemm-bf16-4096,copy-1gib] [--merge]

`--merge` keeps the other cases already in the results file (a full run takes ~10 min: run it in
two halves on a lease of 10-minute commands).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sustained_reference import measure_reference  # noqa: E402
from kernelprof.outputs.benchfile import RESULTS_DIR, Case, device_record, gpu_slug, write_results  # noqa: E402
from kernelprof.gpu.devices import require_gpu  # noqa: E402


def registry_case(op: str, variant: str, shape: str, dtype: str = "bf16"):
    def build():
        import torch

        from kernelprof.methods.ops import resolve_kernel

        req = resolve_kernel(op, variant, shape, dtype)
        spec, s, dt = req.op, req.shape, req.torch_dtype
        inputs = spec.make_inputs(s, dt, torch.device("cuda", 0), 0)
        return spec.variants[req.variant], inputs, spec.flops(s), spec.min_bytes(s, dt), dtype
    return build


def _copy_case():
    import torch

    x = torch.randn(2**28, device="cuda")  # 1 GiB of fp32
    y = torch.empty_like(x)
    return y.copy_, (x,), 0, 2 * x.numel() * 4, "fp32"


def _fma_case():
    from kernelprof.methods.calibrate import fma_microbenchmark

    run, flops = fma_microbenchmark(0, iters=4096)
    return run, (), flops, 0, "fp32"


CASES: dict[str, Callable[[], tuple]] = {
    "gemm-bf16-4096": registry_case("gemm", "cublas", "4096x4096x4096"),
    "gemm-bf16-8192": registry_case("gemm", "cublas", "8192x8192x8192"),
    "gemm-fp8-8192": registry_case("gemm", "cublas", "8192x8192x8192", "fp8"),
    "attention-causal-s4096": registry_case("attention", "sdpa-cudnn", "b=4,h=32,s=4096,d=128,causal"),
    "decode-b16-ctx8192": registry_case("decode", "sdpa", "b=16,h=32,kv=8,ctx=8192,d=128"),
    "decode-b1-ctx32768": registry_case("decode", "sdpa", "b=1,h=32,kv=8,ctx=32768,d=128"),
    "decode-b1-ctx1024-short": registry_case("decode", "triton-splitk", "b=1,h=32,kv=8,ctx=1024,d=128"),
    "copy-1gib": _copy_case,
    "fma-fp32-lowpower": _fma_case,
}


def _zeus(fn, sets, k: int, repeats: int) -> dict[str, Any] | None:
    try:
        from zeus.monitor import ZeusMonitor
        from zeus.profile import measure
    except Exception as exc:  # noqa: BLE001 - a benchmark-only dependency; say why it is missing
        return {"error": f"zeus not importable: {type(exc).__name__}: {exc}"}
    import torch

    step = [0]

    def one() -> None:
        fn(*sets[step[0] % len(sets)])
        step[0] += 1

    target = one
    if k > 1:  # the same launch method as the method under test: a graph of k calls
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            one()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(k):
                one()
        target = g.replay
    mon = ZeusMonitor(gpu_indices=[0], approx_instant_energy=False)
    t0 = time.perf_counter()
    trials = [measure(target, mon, measurement_duration=2.0, cooldown_duration=0.5) for _ in range(repeats)]
    wall = time.perf_counter() - t0
    e = [t.energy_per_iter / k for t in trials]
    return {"energy_per_call_j": statistics.mean(e), "cv_pct": 100 * statistics.stdev(e) / statistics.mean(e),
            "wall_s": wall, "trials_j": e}


def run_case(name: str, repeats: int, ref_window_s: float, zeus: bool) -> tuple[list[Case], dict[str, Any]]:
    import torch

    from kernelprof.methods.steady_state import measure_kernel
    from kernelprof.timeline.cuda_timing import rotating_input_sets

    fn, inputs, flops, min_bytes, dtype = CASES[name]()
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    tensor_bytes = sum(t.numel() * t.element_size() for t in inputs if isinstance(t, torch.Tensor))
    sets = rotating_input_sets(tuple(inputs), min_total_bytes=4 * l2, max_sets=4096) \
        if 0 < tensor_bytes < 4 * l2 else [tuple(inputs)]
    ours = [measure_kernel(fn, flops=flops, min_bytes=min_bytes, dtype=dtype, name=name, input_sets=sets)
            for _ in range(repeats)]
    k = ours[0].calls_per_launch
    ref = measure_reference(fn, sets, calls_per_launch=k, window_s=ref_window_s)
    z = _zeus(fn, sets, k, repeats) if zeus else None
    e = [m.energy_per_call_j for m in ours]
    mean_e = statistics.mean(e)
    err = 100 * (mean_e - ref.energy_per_call_j) / ref.energy_per_call_j
    cv = 100 * statistics.stdev(e) / mean_e if len(e) > 1 else float("nan")
    wall = statistics.median(m.wall_s for m in ours)
    detail = {"reference": ref.to_json(), "kernelprof": [m.to_json() for m in ours], "zeus": z,
              "calls_per_launch": k, "input_sets": len(sets)}
    extra = {"reference_j": ref.energy_per_call_j, "kernelprof_j": mean_e,
             "per_repeat_error_pct": [100 * (x - ref.energy_per_call_j) / ref.energy_per_call_j for x in e],
             "flags": sorted({f.code for m in ours for f in m.flags}),
             "transient_s": [m.transient_s for m in ours], "launch": ours[0].launch,
             "mean_power_w": statistics.mean(m.mean_power_w for m in ours), "reference_power_w": ref.mean_power_w,
             "sm_clock_mhz": statistics.mean(m.sm_clock_mhz or 0 for m in ours)}
    cases = [Case(f"{name}/error_vs_reference_pct", "error_pct", err, extra=extra),
             Case(f"{name}/cv_pct", "cv_pct", cv),
             Case(f"{name}/wall_s", "s", wall)]
    line = (f"{name}: kernelprof {mean_e * 1e3:.4f} mJ ({err:+.2f}%, CV {cv:.2f}%, wall {wall:.1f} s, "
            f"{ours[0].launch} k={k}) vs reference {ref.energy_per_call_j * 1e3:.4f} mJ ({ref.mean_power_w:.0f} W)")
    if z and "energy_per_call_j" in z:
        zerr = 100 * (z["energy_per_call_j"] - ref.energy_per_call_j) / ref.energy_per_call_j
        cases += [Case(f"{name}/zeus_error_vs_reference_pct", "error_pct", zerr, extra={"zeus_cv_pct": z["cv_pct"]}),
                  Case(f"{name}/zeus_wall_s", "s", z["wall_s"] / repeats)]
        line += f"; zeus {zerr:+.2f}% CV {z['cv_pct']:.2f}% {z['wall_s'] / repeats:.1f} s/trial"
    elif z:
        line += f"; {z['error']}"
    print(line, flush=True)
    return cases, detail


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from: {', '.join(CASES)}")
    p.add_argument("--repeats", type=int, default=5, help="kernelprof measurements per case (default 5)")
    p.add_argument("--reference-s", type=float, default=20.0, help="reference window after 3 s warm (default 20)")
    p.add_argument("--no-zeus", action="store_true", help="skip Zeus")
    p.add_argument("--merge", action="store_true", help="keep the other cases already in the results file")
    p.add_argument("--detail", help="also write every measurement's full JSON here")
    args = p.parse_args()
    names = [c for c in args.cases.split(",") if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        print(f"unknown case(s) {unknown}; choose from {list(CASES)}", file=sys.stderr)
        return 2
    require_gpu("benchmarks/accuracy.py")
    details: dict[str, Any] = {}
    dev = device_record()
    path = RESULTS_DIR / f"accuracy-{gpu_slug(dev.get('name', 'unknown'))}.json"
    kept: list[Case] = []
    if args.merge and path.exists():
        for row in json.loads(path.read_text())["cases"]:
            if row["name"].split("/")[0] not in names:
                extra = {k: v for k, v in row.items() if k not in ("name", "metric", "value", "baseline",
                                                                  "baseline_value", "ratio")}
                kept.append(Case(row["name"], row["metric"], row["value"], extra=extra or None))
    cases: list[Case] = []
    notes = {
        "reference": "same callable and launch method, 3 s warm then 20 s back to back; J/call = slope of the "
                     "energy counter (pinned to its updates ~1/s) on calls (benchmarks/sustained_reference.py)",
        "kernelprof": f"measure_kernel defaults, {args.repeats} repeats; error = mean vs reference",
        "zeus": "zeus.profile.measure, 5 trials of 2 s with 0.5 s cooldown, same launch method"}
    for name in names:
        try:
            c, d = run_case(name, args.repeats, args.reference_s, not args.no_zeus)
        except Exception as exc:  # noqa: BLE001 - record the failed case and go on
            print(f"{name}: FAILED {type(exc).__name__}: {exc}", flush=True)
            details[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        cases += c
        details[name] = d
        # After every case: a command stopped at its time limit keeps the cases already done.
        write_results("accuracy", cases + kept, device=dev, notes=notes)
        if args.detail:
            Path(args.detail).write_text(json.dumps(details, indent=1, default=str))
    path = write_results("accuracy", cases + kept, device=dev, notes=notes)
    if args.detail:
        Path(args.detail).write_text(json.dumps(details, indent=1, default=str))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
