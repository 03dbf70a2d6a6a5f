"""How well kernelprof's power sampling works on this GPU: overhead, agreement, additivity, sensor.

    PYTHONPATH=. python benchmarks/power.py                      # ~2 min: writes results/power-<gpu>.json
    PYTHONPATH=. python benchmarks/power.py --capture-seconds 300 --capture-only
                                                                 # no GPU work of its own: run it beside
                                                                 # other jobs; writes power-capture-<gpu>.json

Cases (targets from issue 3):
- overhead: a bf16 4096^3 matmul loop (and a launch-bound 256^3 loop) timed with CUDA events with
  the sampler off, in a thread, in a child process; repetitions interleaved in rotating order so
  that clock drift under the power cap cancels; median of the paired ratios (target <= 0.5%).
- agreement: energy from the buffered samples vs the energy counter between two pinned counter
  marks, steady load (target 2%) and 5 ms bursts every 100 ms (target 3%); the instant field and
  the 1 s average field over the same window, for comparison.
- phases sum: 10 phases of different loads vs the window they tile (target 0.1%).
- sensor: `kernelprof sensor`'s characterization, its duration (< 60 s) and the periods it finds.
- capture (separate entry point): samples lost over a long run (expect 0).
A detailed log goes to $OUT/power-log.json (or power-capture-log.json) when $OUT is set.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernelprof.outputs.benchfile import Case, write_results  # noqa: E402
from kernelprof.errors import KernelprofError  # noqa: E402
from kernelprof.methods.matmul_load import MatmulLoad  # noqa: E402
from kernelprof.outputs.runfile import to_jsonable  # noqa: E402

LOG: dict = {}


def log(key: str, value) -> None:
    LOG[key] = to_jsonable(value)
    print(f"{key}: {json.dumps(LOG[key])[:400]}", flush=True)


class Loads(MatmulLoad):
    """kernelprof's matmul load plus a launch-bound 256^3 matmul (host-side overhead shows there)."""

    def __init__(self) -> None:
        super().__init__(0, 4096, warmup=30, timing_reps=100)
        self.ms = self.ms_per_matmul
        self.sa = self.torch.randn(256, 256, device="cuda", dtype=self.torch.bfloat16)
        self.sc = self.torch.empty_like(self.sa)

    def gemm(self, n: int) -> None:
        self.run(n)

    def timed(self, fn, *args) -> float:
        return self.timed_ms(fn, *args)

    def small(self, n: int) -> None:
        for _ in range(n):
            self.torch.matmul(self.sa, self.sa, out=self.sc)

def bench_overhead(loads: Loads, nvml_index: int, reps: int, gemm_s: float) -> list[Case]:
    from kernelprof.sampling.core_state import SamplerConfig
    from kernelprof.sampling.runners import PowerSampler

    n_gemm = max(100, round(gemm_s * 1e3 / loads.ms))
    n_small = 20000
    # thread_pins_0.1s: the thread sampler pinning the counter at every update, the discipline's finest
    # cadence (benchmarks/counter_discipline.py --counter-interval-s), at its cost of ~3 reads per 100 ms
    runners = {"thread": ("thread", None), "thread_pins_0.1s": ("thread", SamplerConfig(counter_interval_s=0.1)),
               "process": ("process", None)}  # mode -> (PowerSampler mode, config; None: its defaults)
    modes = ["off", *runners]
    times: dict[str, dict[str, list[float]]] = {m: {"gemm": [], "small": []} for m in modes}
    for rep in range(reps):
        order = modes[rep % len(modes):] + modes[:rep % len(modes)]  # rotate, so no mode always runs first or last
        if rep % 2:
            order = order[::-1]
        for mode in order:
            sampler = None if mode == "off" else PowerSampler(
                [nvml_index], mode=runners[mode][0], config=runners[mode][1]).start()
            time.sleep(0.3)  # past the sampler's start-up burst (first drain, probes)
            times[mode]["gemm"].append(loads.timed(loads.gemm, n_gemm))
            times[mode]["small"].append(loads.timed(loads.small, n_small))
            if sampler is not None:
                trace = sampler.stop()
                LOG.setdefault("overhead_lost_samples", []).append(trace.gpus[0].lost_samples())
    log("overhead_times_ms", times)
    cases = []
    for load, label in (("gemm", "gemm_bf16_4096"), ("small", "launch_bound_256")):
        for mode in modes[1:]:
            ratio = np.array(times[mode][load]) / np.array(times["off"][load])
            pct = (ratio - 1.0) * 100.0
            cases.append(Case(f"overhead/{label}/{mode}", "overhead_pct", float(np.median(pct)), extra={
                "p20_pct": float(np.percentile(pct, 20)), "p80_pct": float(np.percentile(pct, 80)), "reps": reps,
                "median_off_ms": float(np.median(times["off"][load])),
                "median_on_ms": float(np.median(times[mode][load])),
                "target_pct": 0.5 if load == "gemm" else None}))
    return cases


def bench_agreement(loads: Loads, nvml_index: int, seconds: float, repeats: int) -> list[Case]:
    from kernelprof.sampling.runners import PowerSampler
    from kernelprof.methods.sensor import agreement

    cases = []
    for label, body, target in (("steady", lambda s: loads.busy_for(s), 2.0),
                                ("square_5_95", lambda s: loads.square(5.0, 95.0, s), 3.0)):
        rows = []
        for r in range(repeats):
            sampler = PowerSampler([nvml_index]).start()
            body(0.8)  # ramp: clocks and power settle; the counter window starts after it
            t0 = time.time_ns() - 50_000_000  # the pinned mark lands after the request; leave room
            sampler.mark_counter(precise=True)
            body(seconds)
            sampler.mark_counter(precise=True)
            t1 = time.time_ns()
            trace = sampler.stop()
            a = agreement(trace.gpus[0], t0, t1 + 400_000_000, label)
            rows.append(a)
            log(f"agreement_{label}_{r}", a)
            time.sleep(1.0)
        ok = [a for a in rows if a is not None and a.samples_diff_pct is not None]
        if not ok:
            continue
        worst = max(ok, key=lambda a: abs(a.samples_diff_pct))
        cases.append(Case(f"agreement/{label}/samples_vs_counter", "error_pct", abs(worst.samples_diff_pct), extra={
            "signed_pct": [a.samples_diff_pct for a in ok], "window_s": [a.window_s for a in ok],
            "counter_mean_w": [a.counter_mean_w for a in ok], "target_pct": target, "worst_of": len(ok)}))
        inst = [a.instant_diff_pct for a in ok if a.instant_diff_pct is not None]
        if inst:
            cases.append(Case(f"agreement/{label}/instant_field_vs_counter", "error_pct", float(max(map(abs, inst))),
                              extra={"signed_pct": inst, "note": "instant field held between its ~100 ms updates"}))
        avg = [a.average_diff_pct for a in ok if a.average_diff_pct is not None]
        if avg:
            cases.append(Case(f"agreement/{label}/average_field_vs_counter", "error_pct", float(max(map(abs, avg))),
                              extra={"signed_pct": avg, "note": "mean of the 1 s average field x window"}))
    return cases


def bench_phases(loads: Loads) -> list[Case]:
    from kernelprof.attribution.intervals import attribute
    from kernelprof.timeline.clock import Interval
    from kernelprof.profiler import Profiler

    plan = [("idle", lambda: time.sleep(0.4)), ("gemm", lambda: loads.busy_for(0.4)),
            ("sq_10_30", lambda: loads.square(10, 30, 0.4)), ("small", lambda: loads.small(4000)),
            ("sq_50_50", lambda: loads.square(50, 50, 0.4)), ("idle2", lambda: time.sleep(0.4)),
            ("sq_5_95", lambda: loads.square(5, 95, 0.4)), ("gemm2", lambda: loads.busy_for(0.4)),
            ("sq_20_20", lambda: loads.square(20, 20, 0.4)), ("gemm3", lambda: loads.busy_for(0.4))]
    with Profiler() as prof:
        for name, body in plan:
            with prof.phase(name):
                body()
    top = prof.timeline.top_level()
    whole = Interval("whole", top[0].t0_ns, top[-1].t1_ns)
    between = [Interval("between", a.t1_ns, b.t0_ns) for a, b in zip(top[:-1], top[1:])]
    a = attribute(prof.trace, [*top, *between, whole], profiles=prof.sensor_profiles)
    parts = sum(i.energy_j for i in a.intervals[:len(top)])
    gaps = sum(i.energy_j for i in a.intervals[len(top):-1])
    whole_j = a.intervals[-1].energy_j
    err = abs(parts + gaps - whole_j) / whole_j * 100
    r = prof.result()
    log("phases", [{"name": p.name, "time_s": p.time_s, "energy_j": p.energy_j, "mean_power_w": p.mean_power_w,
                    "flags": [f.code for f in p.flags]} for p in r.phases])
    return [Case("phases_sum/10_phases", "error_pct", err, extra={
        "phases_j": parts, "between_phases_j": gaps, "whole_j": whole_j, "target_pct": 0.1,
        "window_counter_diff_pct": r.total.counter_diff_pct})]


def bench_sensor(gpu: int) -> list[Case]:
    from kernelprof.methods.sensor import characterize

    t0 = time.perf_counter()
    report, _, _ = characterize(gpu, save=True)
    dur = time.perf_counter() - t0
    log("sensor_report", report)
    s, f = report.source("samples"), report.source("instant")
    cases = [Case("sensor/duration", "s", dur, extra={"target_s": 60})]
    if s.period.median_ms is not None:
        cases.append(Case("sensor/samples_period", "ms", s.period.median_ms,
                          extra={"p10": s.period.p10_ms, "p90": s.period.p90_ms, "window_ms": (s.window_s or 0) * 1e3,
                                 "lag_ms": None if s.lag_s is None else s.lag_s * 1e3, "expected_ms": 20}))
    if f.period.median_ms is not None:
        cases.append(Case("sensor/instant_field_period", "ms", f.period.median_ms,
                          extra={"p10": f.period.p10_ms, "p90": f.period.p90_ms, "expected_ms": 100}))
    return cases


def capture(nvml_index: int, seconds: float, mode: str) -> list[Case]:
    """Sample for `seconds` while this process keeps Python busy half the time (GIL pressure)."""
    from kernelprof.sampling.runners import PowerSampler

    sampler = PowerSampler([nvml_index], mode=mode).start()
    t_end = time.perf_counter() + seconds
    spins = 0
    while time.perf_counter() < t_end:
        chunk_end = time.perf_counter() + 0.05
        while time.perf_counter() < chunk_end:  # pure-Python work holding the GIL, as a busy host would
            spins += 1
        time.sleep(0.05)
        sampler.check()
    trace = sampler.stop()
    g = trace.gpus[0]
    kinds: dict[str, int] = {}
    for x in g.gaps:
        kinds[f"{x.source}/{x.kind}"] = kinds.get(f"{x.source}/{x.kind}", 0) + 1
    in_run = g.samples_t_us[g.samples_t_us >= trace.start_t_us]
    expected = trace.duration_s / g.sample_period_s()
    log("capture", {"mode": mode, "seconds": trace.duration_s, "samples_in_run": len(in_run),
                    "expected_from_period": expected, "gaps_by_kind": kinds, "gaps": list(g.gaps),
                    "drains": g.drains, "max_drain_interval_s": g.max_drain_interval_s,
                    "call_latency_us": g.call_latency_us, "python_spins": spins})
    return [Case(f"capture/{mode}/lost_samples", "samples", g.lost_samples(), extra={
        "seconds": trace.duration_s, "samples": int(len(in_run)), "expected_samples": expected,
        "sensor_gaps": kinds.get("samples/sensor_gap", 0), "drain_late_gaps": kinds.get("samples/drain_late", 0),
        "max_drain_interval_s": g.max_drain_interval_s, "target": 0})]


def write_log(name: str) -> None:
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / name).write_text(json.dumps(LOG, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--reps", type=int, default=8, help="interleaved overhead repetitions")
    ap.add_argument("--gemm-seconds", type=float, default=0.6, help="length of one timed matmul loop")
    ap.add_argument("--agreement-seconds", type=float, default=4.0)
    ap.add_argument("--agreement-repeats", type=int, default=2)
    ap.add_argument("--skip-sensor", action="store_true")
    ap.add_argument("--capture-seconds", type=float, default=300.0)
    ap.add_argument("--capture-only", action="store_true", help="only the long capture run (no GPU work)")
    ap.add_argument("--capture-mode", choices=["thread", "process"], default="thread")
    args = ap.parse_args()
    from kernelprof.outputs.benchfile import device_record
    from kernelprof.gpu.devices import gpu_facts

    facts = gpu_facts(args.gpu)
    device = device_record(args.gpu)
    if args.capture_only:
        cases = capture(facts.nvml_index, args.capture_seconds, args.capture_mode)
        path = write_results("power-capture", cases, device=device,
                             notes={"what": f"{args.capture_seconds:.0f} s of sampling beside other work"})
        write_log("power-capture-log.json")
        print(f"wrote {path}")
        return 0
    t0 = time.perf_counter()
    loads = Loads()
    cases = bench_overhead(loads, facts.nvml_index, args.reps, args.gemm_seconds)
    cases += bench_agreement(loads, facts.nvml_index, args.agreement_seconds, args.agreement_repeats)
    cases += bench_phases(loads)
    if not args.skip_sensor:
        cases += bench_sensor(args.gpu)
    log("wall_s", time.perf_counter() - t0)
    path = write_results("power", cases, device=device, notes={
        "overhead": "median over interleaved reps of (time with sampler / time without) - 1; CUDA events",
        "agreement": "worst of the repeats; counter between marks pinned to its 100 ms updates",
        "ms_per_gemm": loads.ms, "wall_s": LOG["wall_s"]})
    write_log("power-log.json")
    for c in cases:
        print(f"{c.name:55s} {c.value:10.3f} {c.metric}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KernelprofError as exc:
        print(f"power.py: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
