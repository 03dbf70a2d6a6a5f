"""Sensor characterization: how each NVML power source behaves on this GPU (after Yang, Adamek and
Armour, SC'24, "Accurate and convenient energy measurements for GPUs").

`characterize()` drives square-wave loads (bf16 matmul bursts with host sleeps between) and a load
step while a PowerSampler records, then `analyze()` turns the recording into a `SensorReport`:
per source its update period, averaging window (width of the response to a 5 ms burst), lag
behind a load step, the fraction of time it covers and its call latency; the two idle powers;
and the agreement of each source with the energy counter at several duty cycles. The analysis
functions take plain arrays, so recorded runs are analysed on a machine without a GPU.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from kernelprof.attribution.sensor_profile import sensor_profile_path
from kernelprof.methods.matmul_load import MatmulLoad
from kernelprof.timeline.clock import Timeline
from kernelprof.sampling.powertrace import PowerTrace
# Re-exported: the analysis lived here before the split, and callers import it from here.
from kernelprof.methods.sensor_report import SensorReport, SourceReport, analyze
from kernelprof.methods.sensor_response import (Agreement, BurstResponse, PeriodStats, StepResponse, agreement,
                                                burst_response, counter_update_period, step_response, update_period)

__all__ = ["DUTY_CYCLES_MS", "Agreement", "BurstResponse", "PeriodStats", "SensorReport", "SourceReport",
           "StepResponse", "agreement", "analyze", "burst_response", "characterize", "counter_update_period",
           "run_continuous", "run_square_wave", "save_profile_for", "step_response", "update_period"]

DUTY_CYCLES_MS = ((None, None), (50, 50), (10, 30), (5, 95))  # (on, off); None: continuous


def run_square_wave(clock, load: MatmulLoad, on_ms: float, off_ms: float | tuple[float, float], duration_s: float,
                    parent: str, rng: np.random.Generator | None = None) -> None:
    """Bursts of `on_ms` of matmuls, each followed by a host sleep (a range draws a random one), each
    burst an interval of `clock` under `parent`."""
    def timed_burst(run: Callable[[], None]) -> None:
        a = clock.event()
        run()
        b = clock.event()
        clock.add("burst", f"{parent}/burst", 1, "burst", a, b)

    load.square(on_ms, off_ms, duration_s, rng=rng, each_burst=timed_burst)


def run_continuous(clock, load: MatmulLoad, duration_s: float) -> None:
    load.busy_for(duration_s)


def characterize(gpu: int = 0, *, segment_s: float = 3.0, progress: Callable[[str], None] | None = None,
                 save: bool = True) -> tuple[SensorReport, PowerTrace, Timeline]:
    """Measure the power sources of CUDA device `gpu` (~25 s) and save its sensor profile."""
    from kernelprof.gpu.devices import gpu_facts, require_gpu
    from kernelprof.errors import NoGPUError
    from kernelprof.sampling.core import SamplerConfig
    from kernelprof.sampling.runners import PowerSampler

    require_gpu("kernelprof sensor")
    say = progress or (lambda s: None)
    facts = gpu_facts(gpu)
    if facts.nvml_index is None:
        raise NoGPUError(f"CUDA device {gpu} is not visible to NVML, so its power cannot be read")
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)
    cfg = SamplerConfig(field_interval_s=0.01)  # fields every 10 ms to time their 100 ms updates finely
    sampler = PowerSampler([facts.nvml_index], config=cfg).start()
    try:  # a failing load (out of memory, a dead sampler) must not leave the sampler running
        trace, timeline, reads_t, reads_e = _drive(gpu, sampler, segment_s, rng, say)
    except BaseException:
        sampler.abort()
        raise
    report = analyze(trace, timeline, counter_reads=(np.array(reads_t), np.array(reads_e)),
                     driver=facts.driver_version, duration_s=time.perf_counter() - t_start)
    if save:
        save_profile_for(report)
    return report, trace, timeline


def _drive(gpu: int, sampler, segment_s: float, rng: np.random.Generator, say: Callable[[str], None]):
    """The characterization's loads under a started `sampler`: (trace, timeline, counter read times, joules)."""
    from kernelprof.gpu import nvml
    from kernelprof.gpu.devices import gpu_facts
    from kernelprof.timeline.clock import EventClock

    facts = gpu_facts(gpu)
    clock = EventClock(gpu)
    torch = clock.torch
    torch.cuda.set_device(gpu)
    clock.anchor()

    def segment(name: str, body: Callable[[], None], mark: bool = False) -> None:
        say(name)
        a = clock.event()
        if mark:
            body_head, body_tail = body
            body_head()
            sampler.mark_counter(precise=True)
            body_tail()
            sampler.mark_counter(precise=True)
        else:
            body()
        torch.cuda.synchronize(gpu)
        b = clock.event()
        clock.add(name, name, 0, "segment", a, b)
        sampler.check()

    segment("idle_before", lambda: time.sleep(2.0))
    load = MatmulLoad(gpu, warmup=20, timing_reps=50)
    time.sleep(1.0)  # let the warm-up's power fall back before the step
    segment("step", (lambda: run_continuous(clock, load, 0.8), lambda: run_continuous(clock, load, 1.6)), mark=True)
    segment("idle_after", lambda: time.sleep(2.5))
    say("counter period")
    h = nvml.handle(facts.nvml_index)
    reads_t, reads_e = [], []
    end = time.perf_counter() + 0.6
    while time.perf_counter() < end:  # back-to-back reads: ~4 ms each, so this is not a spin
        reads_e.append(nvml.energy_counter_j(h))
        reads_t.append(time.time_ns())
    for on, off in DUTY_CYCLES_MS[1:]:
        off_arg = (off * 0.85, off * 1.15) if on == 5 else off  # jitter the short bursts so samples see all phases
        name = f"duty_{on}_{off}"
        segment(name, (lambda on=on, off_arg=off_arg, name=name: run_square_wave(clock, load, on, off_arg, 0.4, name, rng),
                       lambda on=on, off_arg=off_arg, name=name: run_square_wave(clock, load, on, off_arg, segment_s,
                                                                                  name, rng)), mark=True)
        time.sleep(0.3)
    clock.anchor()
    trace = sampler.stop()
    return trace, clock.fit(), reads_t, reads_e


def save_profile_for(report: SensorReport):
    from kernelprof.cache import write_cached
    from kernelprof.outputs.runfile import to_jsonable

    path = sensor_profile_path(report.uuid, report.driver)
    write_cached(path, {"profile": report.to_profile().to_json(), "report": to_jsonable(report)})
    return path
