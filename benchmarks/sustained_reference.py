"""An independent reference for joules per call: the callable looped back to back for 20 s or more.

It shares no code with kernelprof's measurement (no sampler, no attribution, no settled-state
analysis): only the NVML binding (pynvml) and torch. The method:
- launch the callable back to back (directly, or replaying a CUDA graph of k calls, as the method
  under test did) with a CUDA event every ~50 ms, the host kept at most a few events ahead;
- after `warm_s` (the limiter's transient), pin the energy counter to its updates about once a
  second for `window_s`: a reader thread polls it only around each pin, until the value steps, and
  stamps the step at the midpoint between the last old and the first new reading;
- map the events onto host time from one anchor event recorded on an idle, synchronized GPU, and
  count the calls before each pin by interpolating between events;
- joules per call = the least-squares slope of counter joules on calls across the pins (with its
  standard error), and the same from the first and last pin alone.
"""
from __future__ import annotations

import statistics
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class ReferenceResult:
    energy_per_call_j: float      # slope of counter energy on calls across the pins
    energy_se_j: float            # its standard error
    endpoint_energy_per_call_j: float  # (last pin - first pin) / calls between them
    time_per_call_s: float
    mean_power_w: float
    window_s: float
    pins: int
    sm_clock_mhz_start: float
    sm_clock_mhz_end: float
    temperature_c_start: float
    temperature_c_end: float
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Pinner(threading.Thread):
    """Pins the energy counter to its updates when asked: (host ns of the step, joules)."""

    def __init__(self, handle: Any) -> None:
        super().__init__(daemon=True)
        import pynvml

        self.nvml = pynvml
        self.h = handle
        self.requests = 0
        self.pins: list[tuple[int, float]] = []
        self.cv = threading.Condition()
        self.stop = False

    def ask(self) -> None:
        with self.cv:
            self.requests += 1
            self.cv.notify()

    def _read(self) -> tuple[float, int]:
        a = time.time_ns()
        mj = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.h)
        return mj / 1e3, (a + time.time_ns()) // 2

    def run(self) -> None:
        while True:
            with self.cv:
                while not self.requests and not self.stop:
                    self.cv.wait()
                if self.stop and not self.requests:
                    return
                self.requests -= 1
            e0, t_prev = self._read()
            deadline = time.time_ns() + 300_000_000
            while time.time_ns() < deadline:
                e, t = self._read()
                if e != e0:
                    self.pins.append(((t_prev + t) // 2, e))
                    break
                t_prev = t


def measure_reference(fn: Callable[..., Any], sets: Sequence[tuple], *, calls_per_launch: int = 1,
                      device: int = 0, nvml_index: int | None = None, warm_s: float = 3.0,
                      window_s: float = 20.0, pin_every_s: float = 1.0) -> ReferenceResult:
    """Joules per call of fn over `sets` (cycled), sustained, from the energy counter alone."""
    import pynvml
    import torch

    wall0 = time.perf_counter()
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(device if nvml_index is None else nvml_index)
    step = [0]

    def direct() -> None:
        fn(*sets[step[0] % len(sets)])
        step[0] += 1

    graph = None
    if calls_per_launch > 1:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            direct()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls_per_launch):
                direct()
    launch = graph.replay if graph is not None else direct
    # Launches per ~50 ms event, from a short timed burst.
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(3):
        launch()
    b.record()
    b.synchronize()
    per_launch_s = max(a.elapsed_time(b) / 3e3, 1e-7)
    per_event = max(1, int(0.05 / per_launch_s))

    pinner = _Pinner(h)
    pinner.start()
    torch.cuda.synchronize()
    ev0 = torch.cuda.Event(enable_timing=True)
    anchor_ns = time.time_ns()
    ev0.record()
    events, calls = [ev0], [0]
    clock0 = float(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM))
    temp0 = float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))
    t0 = time.perf_counter()
    next_pin = t0 + warm_s
    end = t0 + warm_s + window_s
    while True:
        for _ in range(per_event):
            launch()
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        events.append(ev)
        calls.append(calls[-1] + per_event * calls_per_launch)
        if len(events) > 4:
            events[-4].synchronize()
        now = time.perf_counter()
        if now >= next_pin:
            if now >= end + 0.5:
                break
            pinner.ask()
            next_pin += pin_every_s
    for _ in range(int(0.4 / per_launch_s) + 1):  # keep working while the last pin waits for an update
        launch()
    ev = torch.cuda.Event(enable_timing=True)
    ev.record()
    events.append(ev)
    calls.append(calls[-1] + (int(0.4 / per_launch_s) + 1) * calls_per_launch)
    torch.cuda.synchronize()
    with pinner.cv:
        pinner.stop = True
        pinner.cv.notify()
    pinner.join(2.0)
    clock1 = float(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM))
    temp1 = float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))
    ev_ns = np.array([anchor_ns + ev0.elapsed_time(e) * 1e6 for e in events])
    cum = np.asarray(calls, np.float64)
    pins = [(t, e) for t, e in pinner.pins if ev_ns[0] < t < ev_ns[-2]]
    if len(pins) < 3:
        raise RuntimeError(f"only {len(pins)} energy-counter pins landed inside the run")
    pt = np.array([p[0] for p in pins], np.float64)
    pe = np.array([p[1] for p in pins], np.float64)
    pc = np.interp(pt, ev_ns, cum)
    slope, icpt = np.polyfit(pc, pe, 1)
    resid = pe - (slope * pc + icpt)
    se = float(np.sqrt(np.sum(resid ** 2) / (len(pc) - 2) / np.sum((pc - pc.mean()) ** 2)))
    span_s = (pt[-1] - pt[0]) / 1e9
    n_calls = pc[-1] - pc[0]
    return ReferenceResult(
        energy_per_call_j=float(slope), energy_se_j=se, endpoint_energy_per_call_j=float((pe[-1] - pe[0]) / n_calls),
        time_per_call_s=span_s / n_calls, mean_power_w=float((pe[-1] - pe[0]) / span_s), window_s=span_s,
        pins=len(pins), sm_clock_mhz_start=clock0, sm_clock_mhz_end=clock1, temperature_c_start=temp0,
        temperature_c_end=temp1, wall_s=time.perf_counter() - wall0)


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))
