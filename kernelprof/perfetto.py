"""Chrome/Perfetto trace JSON of a profiled run: phase slices and power/clock/temperature counters.

Open the file in ui.perfetto.dev (or chrome://tracing). Timestamps are microseconds since the
run's first sample, on NVML's epoch clock, which the Profiler maps CUDA events onto.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kernelprof.clock import Timeline
from kernelprof.powertrace import PowerTrace


def chrome_trace(trace: PowerTrace, timeline: Timeline, *, title: str = "kernelprof") -> dict[str, Any]:
    t0_us = int(trace.start_t_us)
    events: list[dict[str, Any]] = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": title}}]
    # Phases, steps and kernels as nested complete events on one track per depth-0 lane.
    events.append({"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "phases (CUDA events)"}})
    for iv in timeline.intervals:
        events.append({"ph": "X", "pid": 1, "tid": 1, "name": iv.name, "cat": iv.kind,
                       "ts": iv.t0_ns / 1e3 - t0_us, "dur": max(0.0, (iv.t1_ns - iv.t0_ns) / 1e3),
                       "args": {"path": iv.path}})
    for g in trace.gpus:
        pid = 10 + g.gpu
        events.append({"ph": "M", "pid": pid, "name": "process_name", "args": {"name": f"GPU {g.gpu} {g.name}"}})

        def counter(name: str, t_us: np.ndarray, values: np.ndarray, unit: str) -> None:
            for t, v in zip(t_us.tolist(), values.tolist()):
                if v == v:  # skip NaN
                    events.append({"ph": "C", "pid": pid, "name": name, "ts": t - t0_us, "args": {unit: v}})

        counter("power (buffered samples, W)", g.samples_t_us, g.samples_w, "W")
        counter("power (instant field, W)", g.instant_t_us, g.instant_w, "W")
        counter("SM clock (MHz)", g.state_t_us, g.sm_clock_mhz, "MHz")
        counter("temperature (C)", g.state_t_us, g.temperature_c, "C")
        for gap in g.gaps:
            events.append({"ph": "i", "pid": pid, "tid": 1, "s": "p", "name": f"gap: {gap.source} {gap.kind}",
                           "ts": gap.t0_us - t0_us})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"clock": "NVML epoch microseconds minus the trace start", "start_t_us": t0_us,
                          "provenance": trace.provenance}}


def write_chrome_trace(path: str | Path, trace: PowerTrace, timeline: Timeline, *, title: str = "kernelprof") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chrome_trace(trace, timeline, title=title)))
    return path
