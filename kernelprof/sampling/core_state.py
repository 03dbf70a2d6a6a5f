"""The sampler's configuration and its per-GPU accumulation state (kernelprof.sampling.core uses both)."""
from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from kernelprof.sampling.powertrace import Gap, Sources
from kernelprof.sampling.readers.common import GPUIdentity, PowerChannel, StateReading


@dataclass(frozen=True)
class SamplerConfig:
    """Polling schedule and gap thresholds. Defaults follow SENSOR_FACTS.md (H100)."""

    drain_interval_s: float = 0.25  # the buffer holds ~2.4 s: drain ten times inside it
    field_interval_s: float = 0.025  # fields update every ~100 ms; poll 4x faster, keep new stamps
    state_interval_s: float = 0.1  # clocks, temperature, throttle reasons, utilization at 10 Hz
    process_interval_s: float = 1.0  # compute-process list (who else is on the GPU)
    buffer_capacity: int = 119  # samples NVML keeps (H100)
    nominal_sample_period_s: float = 0.020
    nominal_field_period_s: float = 0.100
    gap_factor: float = 1.5  # a spacing over 1.5 periods is a gap
    stall_s: float = 1.0  # a source whose timestamp has not moved this long has stalled
    precise_mark_timeout_s: float = 0.3  # counter updates every 100 ms; give up after 3 periods
    # Pin the energy counter to its update this often (0: only at start, stop and marks), so that
    # attribution can discipline the samples to it (kernelprof.attribution.counter_discipline). Each pin is timed
    # from the previous one's 100 ms grid and costs ~2-4 reads (~3 ms each), not a period of polling.
    # 0.1 s pins every update: the discipline's edge error scales with the span, and on two H200 sweeps
    # 0.1 s kept all 16 phases within 0.5% of the counter where 0.5 s missed on 2 (to 1.09%), at no
    # measurable cost (GEMM -0.16 +- 0.2%; benchmarks/results/logs/predictions-next-h200.md).
    counter_interval_s: float = 0.1
    read_fields: bool = True
    read_state: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_channels(cls, channels: "tuple[PowerChannel, ...]") -> "SamplerConfig":
        """The defaults, with the buffer's size and period from the reader's buffered channel where
        it declares them (NVML's are the defaults). A buffer spanning under 1 s is drained at least
        four times per span, so that one late wake does not lose samples."""
        c = cls()
        buffered = [ch for ch in channels if ch.buffered]
        if not buffered:
            return c
        ch = buffered[0]
        capacity = ch.capacity or c.buffer_capacity
        period_s = ch.update_period_s or c.nominal_sample_period_s
        return replace(c, buffer_capacity=capacity, nominal_sample_period_s=period_s,
                       drain_interval_s=min(c.drain_interval_s, capacity * period_s / 4))


class _Latency:
    """Per-source call durations (a bounded window; medians go into the trace)."""

    def __init__(self) -> None:
        self._us: dict[str, deque] = {}

    def add(self, source: str, us: float) -> None:
        self._us.setdefault(source, deque(maxlen=2000)).append(us)

    def medians(self) -> dict[str, float]:
        return {k: float(np.median(v)) for k, v in self._us.items() if v}


class _GPUState:
    """Mutable per-GPU accumulation inside a SamplerCore."""

    def __init__(self, ident: GPUIdentity, sources: Sources) -> None:
        self.ident = ident
        self.sources = sources
        self.missing = dict(sources.missing)
        self.samples_t: list[np.ndarray] = []
        self.samples_w: list[np.ndarray] = []
        self.recent_deltas_us: deque = deque(maxlen=256)
        self.last_sample_us = 0
        self.last_sample_host_us = 0
        self.last_drain_us: int | None = None
        self.drains = 0
        self.max_drain_interval_us = 0
        self.field_t: dict[str, list[int]] = {"instant": [], "average": []}
        self.field_w: dict[str, list[float]] = {"instant": [], "average": []}
        self.last_field_poll_us: int | None = None
        self.stalls: dict[str, list] = {}  # source -> open stall [t0_us, detected_us]
        self.counter: list[tuple[int, float, bool]] = []
        self.last_precise_host_ns = 0
        self.state: list[tuple[int, StateReading]] = []
        self.procs: list[tuple[int, int]] = []
        self.gaps: list[Gap] = []

    def sample_period_us(self, nominal_us: float) -> float:
        if len(self.recent_deltas_us) < 8:
            return nominal_us
        return float(np.median(self.recent_deltas_us))

    def field_period_us(self, name: str, nominal_us: float) -> float:
        t = self.field_t[name]
        if len(t) < 5:
            return nominal_us
        return float(np.median(np.diff(t[-64:])))
