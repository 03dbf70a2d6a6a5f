"""Issue 17's energy verdict: each subject kernel against its vendor twin at the headline shapes.

    PYTHONPATH=. python benchmarks/energy_verdicts.py [--cases gemm-bf16-4096,...] [--budget-s 400]

For each case, `kernelprof.methods.compare_variants` measures every variant by the settled-state
method (MeasureConfig defaults: the limiter's transient found and left out, J per call from the
energy counter pinned to its updates) and compares each with the vendor baseline: energy ratio =
time ratio x power ratio with 95% CIs, and the verdict (saves energy / saves only time / wastes
energy / no significant difference). Cases `<case>/<variant>/energy_ratio` (vendor = 1; lower is
better), with the time and power ratios, verdict and each side's J/call in `extra`. Cases stream:
the results file is rewritten after each, so a cut-off run keeps what finished.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernelprof.outputs.benchfile import Case, device_record, write_results  # noqa: E402

# (case, op, shape, dtype, vendor baseline, subject variants): the headline shapes.
CASES = (
    ("gemm-bf16-4096", "gemm", "4096x4096x4096", "bf16", "cublas", ("triton-persistent", "triton")),
    ("gemm-bf16-8192", "gemm", "8192x8192x8192", "bf16", "cublas", ("triton-persistent", "triton")),
    ("gemm-bf16-16x4096x4096", "gemm", "16x4096x4096", "bf16", "cublas", ("triton",)),
    ("attention-causal-s4096", "attention", "b=4,h=32,s=4096,d=128,causal", "bf16", "sdpa-cudnn",
     ("triton", "sdpa-flash")),
    ("attention-s4096", "attention", "b=4,h=32,s=4096,d=128", "bf16", "sdpa-cudnn", ("triton", "sdpa-flash")),
    ("decode-b16-ctx8192", "decode", "b=16,h=32,kv=8,ctx=8192,d=128", "bf16", "sdpa", ("triton-splitk",)),
    ("decode-b1-ctx32768", "decode", "b=1,h=32,kv=8,ctx=32768,d=128", "bf16", "sdpa", ("triton-splitk",)),
)


def cases_of(name: str, result) -> list[Case]:
    out = []
    j = {v: k["measurement"]["energy_per_call_j"] for v, k in result.variants.items()}
    for c in result.comparisons:
        out.append(Case(f"{name}/{c.candidate}/energy_ratio", "ratio", c.energy_ratio, extra={
            "baseline": c.baseline, "energy_ratio_ci": c.energy_ratio_ci, "time_ratio": c.time_ratio,
            "time_ratio_ci": c.time_ratio_ci, "power_ratio": c.power_ratio, "verdict": c.verdict,
            "explanation": c.explanation, "candidate_j_per_call": j.get(c.candidate),
            "baseline_j_per_call": j.get(c.baseline), "shape": result.shape, "dtype": result.dtype}))
    return out


def run_verdicts(wanted: list[str], budget_s: float, on_cases=None) -> tuple[list[Case], dict[str, str], float]:
    """Each wanted case measured and compared (one implementation for this script and
    `benchmarks/kernels.py --energy`). `on_cases(cases, failures, elapsed_s)` is called after each
    case, so a caller can stream its results file. Returns (cases, failures, elapsed_s)."""
    from kernelprof.errors import KernelprofError
    from kernelprof.methods.compare_variants import compare_variants

    cases: list[Case] = []
    failures: dict[str, str] = {}
    t0 = time.perf_counter()
    for name, op, shape, dtype, base, subjects in CASES:
        if name not in wanted:
            continue
        if time.perf_counter() - t0 > budget_s:
            failures[name] = "not started: --budget-s reached"
            continue
        print(f"[{time.perf_counter() - t0:6.1f} s] {name}: {base} vs {', '.join(subjects)}", flush=True)
        try:
            res = compare_variants(op, (base, *subjects), shape=shape, dtype=dtype, baseline=base)
        except KernelprofError as exc:  # one case failing (OOM, unsupported) must not lose the others
            failures[name] = f"{type(exc).__name__}: {exc}"
            print(f"  failed: {failures[name]}", flush=True)
            continue
        failures.update({f"{name}/{v}": err for v, err in res.failed.items()})
        new = cases_of(name, res)
        cases += new
        for c in new:
            e = c.extra
            print(f"  {c.name}: {c.value:.3f} (time {e['time_ratio']:.3f} x power {e['power_ratio']:.3f}): "
                  f"{e['verdict']}", flush=True)
        if on_cases is not None:
            on_cases(cases, failures, time.perf_counter() - t0)
    return cases, failures, time.perf_counter() - t0


METHOD = "compare_variants, MeasureConfig defaults (settled)"


def main() -> int:
    from kernelprof.gpu.devices import require_gpu

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(c[0] for c in CASES))
    ap.add_argument("--budget-s", type=float, default=400.0, help="start no case after this many seconds")
    args = ap.parse_args()
    wanted = args.cases.split(",")
    unknown = sorted(set(wanted) - {c[0] for c in CASES})
    if unknown:
        print(f"energy_verdicts: unknown case {unknown[0]!r}; known: {', '.join(c[0] for c in CASES)}", file=sys.stderr)
        return 2
    require_gpu("benchmarks/energy_verdicts.py")
    dev = device_record()

    def write(cases, failures, elapsed_s):
        return write_results("energy-verdicts", cases, device=dev,
                             notes={"failures": failures, "method": METHOD, "elapsed_s": elapsed_s})

    cases, failures, elapsed = run_verdicts(wanted, args.budget_s, on_cases=write)
    print(f"wrote {write(cases, failures, elapsed)}")
    return 0 if cases else 1


if __name__ == "__main__":
    from kernelprof.errors import KernelprofError

    try:
        sys.exit(main())
    except KernelprofError as exc:
        print(f"energy_verdicts: {exc}", file=sys.stderr)
        sys.exit(3)
