"""Is the window regression right? Kernels in a random mix vs the same kernels measured alone.

1. A program interleaves four kernels of very different power (bf16 GEMM, a 1 GiB device copy,
   an fp32 FMA chain, KV-cache decode attention) in random segments of 1-40 ms, with random idle
   gaps, for `--seconds` (10 s), under `Profiler(kernels=True)`: CUPTI records every kernel, and each
   segment is a phase named after its case, so each case's kernel names are known.
2. `attribute_kernels` (kernelprof.attribution.kernel_regression) fits one power per case (the case's
   kernel names as one class) on the 20 ms sample windows: J per call = class energy / calls.
3. Each case alone by `measure_kernel` (steady state, settled): J per call.
Cases `<case>/error_vs_isolated_pct` = (regression - isolated) / isolated x 100; target within 5%.
The mixed run's J per call is the kernel's mean power *in the mix* x its running time, and the
isolated one its settled power: a kernel whose power depends on what ran before it (clocks after a
GEMM, the power limiter's transient) differs for a physical reason, which the note records.

    PYTHONPATH=. python benchmarks/kernel_attribution.py [--seconds 10] [--save $OUT/mix.json]
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.accuracy import registry_case as _registry  # noqa: E402 (the same case builders)
from kernelprof.gpu.devices import require_gpu  # noqa: E402
from kernelprof.outputs.benchfile import Case, device_record, write_results  # noqa: E402


def _copy() -> tuple:
    import torch

    x = torch.randn(2**28, device="cuda")  # 1 GiB of fp32
    y = torch.empty_like(x)
    return y.copy_, (x,), 0, 2 * x.numel() * 4, "fp32"


def _fma() -> tuple:
    from kernelprof.methods.calibrate import fma_microbenchmark

    run, flops = fma_microbenchmark(0, iters=4096)
    return run, (), flops, 0, "fp32"


CASES: dict[str, Callable[[], tuple]] = {
    "gemm-bf16-8192": _registry("gemm", "cublas", "8192x8192x8192"),
    "copy-1gib": _copy,
    "fma-fp32": _fma,
    "decode-b16-ctx8192": _registry("decode", "sdpa", "b=16,h=32,kv=8,ctx=8192,d=128"),
}


def _time_per_call_s(fn: Callable, args: tuple, calls: int = 20) -> float:
    import torch

    for _ in range(3):
        fn(*args)
    t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0.record()
    for _ in range(calls):
        fn(*args)
    t1.record()
    torch.cuda.synchronize()
    return t0.elapsed_time(t1) / 1e3 / calls


def run_mix(built: dict[str, tuple], per_call_s: dict[str, float], seconds: float, seed: int, save: str | None):
    """The mixed program under the Profiler; returns (Profiler, calls per case)."""
    import torch

    from kernelprof.profiler import Profiler

    rng = random.Random(seed)
    calls = {c: 0 for c in built}
    with Profiler(gpus=[0], kernels=True) as prof:
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            case = rng.choice(list(built))
            fn, args = built[case][0], built[case][1]
            n = max(1, round(rng.uniform(1e-3, 40e-3) / per_call_s[case]))
            with prof.phase(case, kind="case"):
                for _ in range(n):
                    fn(*args)
            calls[case] += n
            if rng.random() < 0.2:  # idle gaps, so that the idle power is identifiable too
                torch.cuda.synchronize()
                time.sleep(rng.uniform(2e-3, 30e-3))
    if save:
        prof.save(save, extra={"benchmark": "kernel_attribution", "calls": calls})
    return prof, calls


def case_overrides(prof: Any, cases: list[str]) -> tuple[list[Any], dict[str, list[str]]]:
    """One class per case: the kernel names that started inside that case's phases."""
    import numpy as np

    from kernelprof.attribution.kernel_classes import ClassOverride

    k = prof.kernels
    names: dict[str, list[str]] = {}
    taken: set[str] = set()
    for case in cases:
        ivs = [i for i in prof.timeline.intervals if i.name == case]
        sel = np.zeros(len(k), bool)
        for iv in ivs:
            sel |= (k.start_ns >= iv.t0_ns) & (k.start_ns < iv.t1_ns)
        found = sorted({k.names[i] for i in np.unique(k.name_index[sel]).tolist()} - taken)
        taken |= set(found)
        names[case] = found
    overrides = [ClassOverride(c, "^(?:" + "|".join(re.escape(n) for n in ns) + ")$") for c, ns in names.items() if ns]
    return overrides, names


def case_clocks(prof: Any, cases: list[str]) -> dict[str, tuple[float | None, int]]:
    """Mean SM clock (MHz) of the 10 Hz readings taken inside each case's segments, and their count:
    the operating point each kernel ran at in the mix, to set beside its isolated measurement's."""
    import numpy as np

    g = prof.trace.gpus[0]
    t_ns = g.state_t_us.astype(np.int64) * 1000
    ok = np.isfinite(g.sm_clock_mhz)
    out: dict[str, tuple[float | None, int]] = {}
    for case in cases:
        sel = np.zeros(len(t_ns), bool)
        for iv in (i for i in prof.timeline.intervals if i.name == case):
            sel |= (t_ns >= iv.t0_ns) & (t_ns < iv.t1_ns)
        sel &= ok
        out[case] = (float(np.mean(g.sm_clock_mhz[sel])) if sel.any() else None, int(sel.sum()))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="length of the mixed run (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from: {', '.join(CASES)}")
    p.add_argument("--save", help="also save the mixed run's profile here (kernelprof report works on it)")
    p.add_argument("--burst-reference", action="store_true",
                   help="also measure each case alone in the burst state (MeasureConfig(state='burst'): short "
                        "runs after idle gaps, what a kernel costs in a mix of short segments) and report the "
                        "error against it beside the settled one")
    args = p.parse_args()
    names = [c for c in args.cases.split(",") if c]
    if [c for c in names if c not in CASES]:
        print(f"unknown case(s); choose from {list(CASES)}", file=sys.stderr)
        return 2
    require_gpu("benchmarks/kernel_attribution.py")
    from kernelprof.attribution.kernel_regression import attribute_kernels
    from kernelprof.methods.kernel_measurement import MeasureConfig
    from kernelprof.methods.steady_state import measure_kernel

    built = {}
    for c in names:
        try:
            built[c] = CASES[c]()
        except ImportError as exc:  # the FMA chain needs cupy
            print(f"{c}: skipped ({exc})", flush=True)
    names = list(built)
    per_call = {c: _time_per_call_s(b[0], b[1]) for c, b in built.items()}
    print({c: f"{t * 1e3:.3f} ms/call" for c, t in per_call.items()}, flush=True)
    prof, calls = run_mix(built, per_call, args.seconds, args.seed, args.save)
    overrides, case_names = case_overrides(prof, names)
    clocks = case_clocks(prof, names)
    dev = device_record()
    limits = {dev["uuid"]: dev["power_limit_w"]} if dev.get("uuid") and dev.get("power_limit_w") else None
    fit = attribute_kernels(prof.trace, prof.kernels, (prof.window.t0_ns, prof.window.t1_ns), prof.sensor_profiles,
                            overrides=overrides, power_limits_w=limits)[0]
    by = {c.name: c for c in fit.classes}
    print(f"mix: {fit.windows} windows, residual {fit.residual_j:.1f} J of {fit.measured_energy_j:.1f} J, "
          f"idle {fit.idle_power_w:.1f} W, condition {fit.condition_number:.1f}", flush=True)
    for n in fit.notes:
        print(f"note: {n}", flush=True)
    cases: list[Case] = []
    notes = {"mix": f"{args.seconds:g} s, random segments of 1-40 ms per case, idle gaps of 2-30 ms after 20% of "
                    f"segments, seed {args.seed}; CUPTI on (torch.profiler)",
             "regression": "NNLS of each 20 ms window's energy on per-case busy seconds + idle seconds "
                           "(kernelprof.attribution.kernel_regression); J/call = case power x busy time / calls",
             "isolated": "measure_kernel defaults (sustained, settled state)"
                         + ("; and MeasureConfig(state='burst') (error_vs_isolated_burst_pct)" if args.burst_reference
                            else ""),
             "fit": {"windows": fit.windows, "residual_j": fit.residual_j, "measured_energy_j": fit.measured_energy_j,
                     "idle_power_w": fit.idle_power_w, "condition_number": fit.condition_number,
                     "residual_rms_w": fit.residual_rms_w, "notes": list(fit.notes)},
             "kernel_names": case_names}
    for case in names:
        fn, a, flops, min_bytes, dtype = built[case]
        m = measure_kernel(fn, flops=flops, min_bytes=min_bytes, dtype=dtype, name=case, input_sets=[tuple(a)])
        c = by.get(case)
        extra = {"isolated_j_per_call": m.energy_per_call_j, "isolated_mean_power_w": m.mean_power_w,
                 "isolated_time_per_call_s": m.time_per_call_s, "isolated_flags": [f.code for f in m.flags],
                 "calls_in_mix": calls[case], "mix_sm_clock_mhz": clocks[case][0],
                 "mix_sm_clock_readings": clocks[case][1], "isolated_sm_clock_mhz": m.sm_clock_mhz}
        if c is None:
            print(f"{case}: no class in the fit (kernel names {case_names.get(case)})", flush=True)
            continue
        reg = c.energy_j / calls[case]
        err = 100.0 * (reg - m.energy_per_call_j) / m.energy_per_call_j
        # J/call = power x time per call: say which of the two differs. A kernel whose clock the mix moves
        # (the power limiter reacting to its neighbours) runs at another operating point than alone, and that
        # is the time part, not an attribution error; the power part is what the regression attributed.
        time_part = 100.0 * ((c.busy_s / calls[case]) / m.time_per_call_s - 1.0)
        power_part = 100.0 * (c.power_w / m.mean_power_w - 1.0)
        extra.update({"time_part_pct": time_part, "power_part_pct": power_part,"regression_j_per_call": reg, "regression_power_w": c.power_w,
                      "regression_power_se_w": c.power_se_w, "identifiable": c.identifiable, "reason": c.reason,
                      "busy_s": c.busy_s, "busy_time_per_call_s": c.busy_s / calls[case],
                      "within_5pct": abs(err) <= 5.0})
        cases.append(Case(f"{case}/error_vs_isolated_pct", "error_pct", err, extra=extra))
        cases.append(Case(f"{case}/regression_j_per_call", "j_per_call", reg, baseline="isolated (measure_kernel)",
                          baseline_value=m.energy_per_call_j))
        if args.burst_reference:  # the like-for-like reference for a kernel run in short segments
            mb = measure_kernel(fn, flops=flops, min_bytes=min_bytes, dtype=dtype, name=case, input_sets=[tuple(a)],
                                config=MeasureConfig(state="burst"))
            err_b = 100.0 * (reg - mb.energy_per_call_j) / mb.energy_per_call_j
            cases.append(Case(f"{case}/error_vs_isolated_burst_pct", "error_pct", err_b, extra={
                "time_part_pct": 100.0 * ((c.busy_s / calls[case]) / mb.time_per_call_s - 1.0),
                "power_part_pct": 100.0 * (c.power_w / mb.mean_power_w - 1.0),
                "isolated_burst_j_per_call": mb.energy_per_call_j, "isolated_burst_mean_power_w": mb.mean_power_w,
                "isolated_burst_flags": [f.code for f in mb.flags], "within_5pct": abs(err_b) <= 5.0}))
            print(f"{case}: vs the burst state {mb.energy_per_call_j:.4f} J/call ({mb.mean_power_w:.0f} W): "
                  f"{err_b:+.2f}%", flush=True)
        print(f"{case}: regression {reg:.4f} J/call ({c.power_w:.0f} +- {c.power_se_w or float('nan'):.1f} W, "
              f"{'identifiable' if c.identifiable else 'NOT identifiable: ' + str(c.reason)}), isolated "
              f"{m.energy_per_call_j:.4f} J/call ({m.mean_power_w:.0f} W): {err:+.2f}% "
              f"(time per call {time_part:+.2f}%, power {power_part:+.2f}%; SM clock in the mix "
              f"{clocks[case][0] or float('nan'):.0f} MHz over {clocks[case][1]} readings, alone "
              f"{m.sm_clock_mhz or float('nan'):.0f} MHz)", flush=True)
        write_results("kernel-attribution", cases, device=dev, notes=notes)
    path = write_results("kernel-attribution", cases, device=dev, notes=notes)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
