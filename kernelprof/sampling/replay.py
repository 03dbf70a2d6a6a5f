"""Replay a recorded PowerTrace through the sampler as its reader (NVML's, or any vendor's) would have served it.

`ReplayReader` answers the sampler's reader questions from a trace: the sample buffer keeps only
the newest `buffer_capacity` samples at or before "now", fields give their latest value, the
counter is interpolated between the recorded marks. "Now" is a clock you drive (tests) or real
time scaled by `speed` from the trace's start, so a too-slow drain loses samples just as on a GPU.

`synthetic_trace` builds a trace from a power function for tests of the math and of the
sampler's logic; it is labelled provenance="synthetic" and is never a measurement.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from kernelprof.errors import MeasurementError, NotSupportedError
from kernelprof.sampling.powertrace import GPUTrace, PowerTrace, Sources
from kernelprof.sampling.readers.common import GPUIdentity, PowerChannel, Reader, StateReading, register_reader


class ReplayReader(Reader):
    vendor = "replay"
    provenance = "replayed"
    # whatever the trace recorded; probe() says which of these this GPU has
    channels = (PowerChannel("samples", buffered=True, window_s=None, update_period_s=None, note="recorded"),
                PowerChannel("instant", buffered=False, window_s=None, update_period_s=None, note="recorded"),
                PowerChannel("average", buffered=False, window_s=None, update_period_s=None, note="recorded"))

    def __init__(self, trace: PowerTrace, *, speed: float = 1.0, clock: Callable[[], int] | None = None,
                 start_at_us: int | None = None, buffer_capacity: int = 119,
                 fail_after_s: float | None = None, counter_period_s: float | None = None) -> None:
        self.trace = trace
        # None: the counter moves with every read (interpolated); a period: it steps on that grid
        # from the trace's start, as NVML's does every 100 ms, so pinning to its updates can be tested
        self.counter_period_s = counter_period_s
        self.speed = speed
        self.buffer_capacity = buffer_capacity
        self.start_at_us = trace.start_t_us if start_at_us is None else start_at_us
        self._clock = clock
        self._m0: float | None = None if clock is not None else time.monotonic()  # trace time start_at_us is now
        self._fail_after_s = fail_after_s  # tests: raise an unexpected error this long after open
        self._g: list[GPUTrace] = []

    @classmethod
    def from_run_file(cls, path: str | Path, **kw) -> "ReplayReader":
        from kernelprof.outputs.runfile import load_run

        run = load_run(path)
        meta = run.payload["trace"] if "trace" in run.payload else run.payload
        return cls(PowerTrace.from_run_parts(meta, run.arrays), **kw)

    def describe(self) -> dict:
        # the recorded reader, so that a replayed trace still says which vendor's channels it holds
        return dict(self.trace.reader) if self.trace.reader else super().describe()

    def now_us(self) -> int:
        if self._clock is not None:
            return int(self._clock())
        if self._m0 is None:
            self._m0 = time.monotonic()
        return int(self.start_at_us + self.speed * (time.monotonic() - self._m0) * 1e6)

    def _maybe_fail(self) -> None:
        if self._fail_after_s is not None and self._m0 is not None \
                and time.monotonic() - self._m0 > self._fail_after_s:
            raise RuntimeError("replay reader: injected failure")

    def open(self, gpus: list[int]) -> list[GPUIdentity]:
        by_index = {g.gpu: g for g in self.trace.gpus}
        missing = [g for g in gpus if g not in by_index]
        if missing:
            raise MeasurementError(f"the replayed trace has no GPU {missing}; it has {sorted(by_index)}")
        self._g = [by_index[g] for g in gpus]
        self.now_us()  # start the clock
        return [GPUIdentity(g.gpu, g.uuid, g.name) for g in self._g]

    def probe(self, k: int) -> Sources:
        return self._g[k].sources

    def _need(self, k: int, source: str) -> GPUTrace:
        g = self._g[k]
        if not getattr(g.sources, source):
            raise NotSupportedError(f"{source} is not supported on this GPU/driver (replayed)")
        return g

    def samples(self, k: int, last_seen_us: int) -> tuple[np.ndarray, np.ndarray]:
        self._maybe_fail()
        g = self._need(k, "samples")
        now = self.now_us()
        hi = int(np.searchsorted(g.samples_t_us, now, side="right"))
        lo = max(0, hi - self.buffer_capacity)  # the buffer forgets the oldest samples
        lo = max(lo, int(np.searchsorted(g.samples_t_us, last_seen_us, side="right")))
        return g.samples_t_us[lo:hi].copy(), g.samples_w[lo:hi].copy()

    def poll_power_w(self, k: int) -> dict[str, tuple[int, float]]:
        self._maybe_fail()
        g = self._g[k]
        now = self.now_us()
        out = {}
        for name in ("instant", "average"):
            t, w = getattr(g, f"{name}_t_us"), getattr(g, f"{name}_w")
            i = int(np.searchsorted(t, now, side="right")) - 1
            if getattr(g.sources, name) and i >= 0:
                out[name] = (int(t[i]), float(w[i]))
        return out

    def counter_j(self, k: int) -> float:
        g = self._need(k, "counter")
        now = self.now_us()
        if self.counter_period_s:
            period_us = self.counter_period_s * 1e6
            now = int(self.trace.start_t_us + np.floor((now - self.trace.start_t_us) / period_us) * period_us)
        t, w = g.samples_t_us, g.samples_w

        def samples_j(at_us: float) -> float:  # the samples integrated from the trace's first one
            i = int(np.searchsorted(t, at_us, side="right"))
            return float(np.sum(w[1:i] * np.diff(t[:i]) / 1e6)) if i > 1 else 0.0

        if len(g.counter_t_us) >= 2:
            # between two recorded marks, the counter follows the samples' shape, scaled to hit both
            # marks (a straight line would make the replayed counter read the marks' mean power)
            i = int(np.clip(np.searchsorted(g.counter_t_us, now, side="right") - 1, 0, len(g.counter_t_us) - 2))
            ta, tb = g.counter_t_us[i], g.counter_t_us[i + 1]
            ea, eb = float(g.counter_j[i]), float(g.counter_j[i + 1])
            sa, sb = samples_j(ta), samples_j(tb)
            if len(t) < 2 or sb <= sa or not ta <= now <= tb:
                return float(np.interp(now, g.counter_t_us, g.counter_j))
            return ea + (eb - ea) * (samples_j(now) - sa) / (sb - sa)
        # one mark or none: integrate the samples from the trace's start
        base = float(g.counter_j[0]) if len(g.counter_j) else 0.0
        return base + samples_j(now)

    def state(self, k: int, sources: Sources) -> StateReading:
        g = self._g[k]
        i = int(np.searchsorted(g.state_t_us, self.now_us(), side="right")) - 1
        if i < 0:
            return StateReading()
        return StateReading(float(g.sm_clock_mhz[i]), float(g.mem_clock_mhz[i]), float(g.temperature_c[i]),
                            int(g.clock_event_reasons[i]), float(g.util_gpu_pct[i]), float(g.util_mem_pct[i]))

    def compute_pids(self, k: int) -> list[int]:
        g = self._g[k]
        i = int(np.searchsorted(g.process_t_us, self.now_us(), side="right")) - 1
        n_other = int(g.other_processes[i]) if i >= 0 else 0
        own = self.trace.own_pid
        return [own] + [own + 1 + j for j in range(n_other)]


register_reader("replay", lambda spec: ReplayReader.from_run_file(
    spec["path"], speed=spec.get("speed", 1.0), fail_after_s=spec.get("fail_after_s")))


def synthetic_trace(power_w: Callable[[np.ndarray], np.ndarray], *, start_t_us: int, duration_s: float,
                    sample_period_s: float = 0.020, jitter_s: float = 0.0, field_period_s: float = 0.100,
                    history_s: float = 2.4, gpu: int = 0, seed: int = 0,
                    sources: Sources | None = None, sm_clock_mhz: float = 1980.0,
                    clock_event_reasons: int = 0) -> PowerTrace:
    """A made-up trace: samples are the exact mean of `power_w` over the window ending at each stamp.

    `power_w(t_s)` takes seconds relative to `start_t_us`. For testing the math only.
    """
    rng = np.random.default_rng(seed)
    n = int((duration_s + history_s) / sample_period_s) + 2
    steps = np.full(n, sample_period_s) + (rng.uniform(-jitter_s, jitter_s, n) if jitter_s else 0.0)
    t_s = -history_s + np.cumsum(steps)
    t_s = t_s[t_s <= duration_s + 1e-9]
    t_us = start_t_us + np.round(t_s * 1e6).astype(np.int64)
    t_s = (t_us - start_t_us) / 1e6
    starts = np.concatenate([[t_s[0] - sample_period_s], t_s[:-1]])

    def window_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        fine = np.linspace(0.0, 1.0, 201)
        pts = a[:, None] + (b - a)[:, None] * fine[None, :]
        return np.trapezoid(power_w(pts), fine, axis=1) if hasattr(np, "trapezoid") else np.trapz(power_w(pts), fine, axis=1)

    samples_w = window_mean(starts, t_s)
    f_s = np.arange(-history_s, duration_s + 1e-9, field_period_s)
    f_us = start_t_us + np.round(f_s * 1e6).astype(np.int64)
    instant_w = power_w(f_s)
    average_w = window_mean(f_s - 1.0, f_s)
    c_s = np.array([0.0, duration_s])
    fine_t = np.linspace(0.0, duration_s, 20001)
    total = float(np.trapezoid(power_w(fine_t), fine_t)) if hasattr(np, "trapezoid") else float(np.trapz(power_w(fine_t), fine_t))
    st_s = np.arange(0.0, duration_s + 1e-9, 0.1)
    g = GPUTrace(
        gpu=gpu, uuid=f"GPU-synthetic-{gpu}", name="synthetic",
        sources=sources or Sources(samples=True, instant=True, average=True, counter=True, clocks=True,
                                   throttle=True, utilization=True, processes=True),
        samples_t_us=t_us, samples_w=samples_w, instant_t_us=f_us, instant_w=instant_w,
        average_t_us=f_us, average_w=average_w,
        counter_t_us=start_t_us + np.round(c_s * 1e6).astype(np.int64), counter_j=np.array([1000.0, 1000.0 + total]),
        counter_precise=np.array([True, True]),
        state_t_us=start_t_us + np.round(st_s * 1e6).astype(np.int64),
        sm_clock_mhz=np.full(len(st_s), sm_clock_mhz), mem_clock_mhz=np.full(len(st_s), 2619.0),
        temperature_c=np.full(len(st_s), 40.0), clock_event_reasons=np.full(len(st_s), clock_event_reasons, np.int64),
        util_gpu_pct=np.zeros(len(st_s)), util_mem_pct=np.zeros(len(st_s)),
        process_t_us=np.array([start_t_us], np.int64), other_processes=np.array([0], np.int64),
    )
    return PowerTrace(mode="synthetic", start_t_us=start_t_us, stop_t_us=start_t_us + int(duration_s * 1e6),
                      own_pid=12345, gpus=(g,), provenance="synthetic")
