"""What a kernel measurement is asked for (`MeasureConfig`), what the GPU run hands back as plain
numbers (`RunRecord`, `LaunchFacts`), and what it produces (`KernelMeasurement`, joules and
seconds per call with their uncertainty and how they were obtained).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from kernelprof.attribution.interval_energy import Flag
from kernelprof.errors import MeasurementError, UsageError
from kernelprof.methods.settled import Batch

STATES = ("sustained", "burst")


@dataclass(frozen=True)
class MeasureConfig:
    """How a kernel measurement is made. The defaults fit one point in about 5 s on an H200.

    state="sustained": one continuous run; the limiter's transient is found and left out, and the
    run goes on until `min_settled_s` of settled state is in hand (or `max_run_s`).
    state="burst": `burst_trials` runs of `burst_s` each after idle gaps: what a kernel costs in
    the first few hundred ms after idle, transient included (bursty programs live there).
    """

    state: str = "sustained"
    run_s: float = 3.0             # sustained: run at least this long before checking for a settled stretch
    max_run_s: float = 6.0         # ... and at most this long
    min_settled_s: float = 2.0     # settled state wanted, after the transient
    min_drop_s: float = 0.2        # always leave out the first 0.2 s (the sensor window straddling the start)
    segment_s: float = 0.1         # CUDA event every ~100 ms (one energy-counter period)
    batch_s: float = 0.5           # batch-means batches for the interval
    check_s: float = 0.25          # after run_s, look for the settled stretch this often (each look costs ~ms)
    counter_mark_s: float = 0.5    # pinned energy-counter reading this often during the run
    min_counter_span_s: float = 1.0  # the counter gives the figure when its pinned span is at least this
    tail_s: float = 0.25           # work kept running after the settled check, past the last pin
    tail_guard_s: float = 0.05     # the analysed stretch ends this long before the work does
    settle_tolerance_pct: float = 0.5  # a trend larger than this (and than 2 SE) across the stretch: not settled
    target_rel_ci: float = 0.01    # stop once the energy CI half-width is within 1% (and settled)
    idle_s: float = 0.5            # idle before the run, after warm-up: the idle baseline is read there
    idle_skip_s: float = 0.2       # the first part of the idle is the warm-up's decay tail
    idle_guard_s: float = 0.03     # ... and its last 30 ms may hold the sample smearing the run's start
    burst_s: float = 0.3
    burst_trials: int = 5
    burst_gap_s: tuple[float, float] = (0.8, 1.2)
    graph_below_s: float = 1e-3    # calls shorter than this launched back to back may be replayed from a graph
    graph_replay_s: float = 2e-3   # aim for graph replays of about this long
    graph_tolerance: float = 0.03  # a graph slower than direct launches by more than this is not used
    rotate: bool = True            # rotate input copies when the inputs fit in 4x L2
    sampler_mode: str = "thread"
    max_wall_s: float = 12.0       # hard cap on one measurement's wall time
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.state not in STATES:
            problems.append(f"state must be one of {', '.join(STATES)}, got {self.state!r}")
        for name in ("run_s", "max_run_s", "min_settled_s", "segment_s", "batch_s", "counter_mark_s", "burst_s",
                     "check_s", "target_rel_ci", "max_wall_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                problems.append(f"{name} must be a positive number of seconds (or fraction), got {v!r}")
        if not problems:
            if self.max_run_s < self.run_s:
                problems.append(f"max_run_s ({self.max_run_s}) is below run_s ({self.run_s})")
            if self.min_settled_s + self.min_drop_s > self.max_run_s:
                problems.append(f"min_settled_s + min_drop_s ({self.min_settled_s + self.min_drop_s} s) does not fit "
                                f"in max_run_s ({self.max_run_s} s)")
            if self.batch_s < self.segment_s:
                problems.append(f"batch_s ({self.batch_s}) must be at least segment_s ({self.segment_s})")
            if self.burst_trials < 2:
                problems.append(f"burst_trials must be at least 2 (an interval needs two), got {self.burst_trials}")
        if problems:
            raise UsageError("; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class RunRecord:
    """One continuous stretch of back-to-back launches, as plain numbers.

    Event 0 was recorded right after host time `anchor_ns` on an idle, synchronized GPU; `event_ms`
    are elapsed times from it (ms), one per segment edge; `segment_calls[j]` calls ran between
    edges j and j+1. `idle_ns` is the idle stretch read for the baseline, if any.
    """

    anchor_ns: int
    event_ms: tuple[float, ...]
    segment_calls: tuple[int, ...]
    idle_ns: tuple[int, int] | None = None

    def edges_ns(self) -> np.ndarray:
        return self.anchor_ns + np.round(np.asarray(self.event_ms, np.float64) * 1e6).astype(np.int64)


@dataclass(frozen=True)
class KernelMeasurement:
    """Energy and time per call of one kernel, with uncertainty and how it was obtained."""

    name: str
    flops: float
    min_bytes: float
    dtype: str
    state: str                       # sustained | burst
    time_per_call_s: float
    time_ci_s: float
    energy_per_call_j: float
    energy_ci_j: float
    energy_source: str               # energy_counter | nvml_samples: where energy_per_call_j comes from
    samples_energy_per_call_j: float | None
    counter_energy_per_call_j: float | None
    counter_vs_samples_pct: float | None  # samples minus counter over the counter's span, % of counter
    dynamic_energy_per_call_j: float | None
    mean_power_w: float
    idle_power_w: float | None
    idle_kind: str
    transient_s: float | None        # sustained: where the settled stretch starts, s after the first launch
    settled_s: float                 # length of the stretch the figures come from
    run_s: float                     # length of the whole run (sustained) or of all bursts
    drift_pct: float | None          # trend of the batch means across the stretch, % of the mean
    batches: tuple[Batch, ...]
    flags: tuple[Flag, ...]
    calls_per_launch: int            # >1: replayed from a CUDA graph
    launch: str                      # cuda_graph | direct
    input_sets: int
    rotated_bytes: int               # bytes of input copies cycled through
    method: str
    source: str                      # power source of the samples: nvml_samples, ...
    wall_s: float
    config: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    sm_clock_mhz: float | None = None
    nvml_utilization_pct: float | None = None  # NVML "GPU utilization", mean over the stretch
    temperature_c: float | None = None
    segment_t_s: tuple[float, ...] = ()        # per ~100 ms segment: start (s after the first launch) ...
    segment_power_w: tuple[float, ...] = ()    # ... mean power from the samples
    segment_sm_clock_mhz: tuple[float, ...] = ()

    @property
    def energy_rel_ci(self) -> float | None:
        """Half-width of the 95% CI of the energy per call, as a fraction of it (None without a CI)."""
        if not self.energy_per_call_j or self.energy_ci_j is None:
            return None
        return self.energy_ci_j / self.energy_per_call_j

    @property
    def achieved_flop_s(self) -> float:
        """FLOP/s achieved: the analytic FLOPs of one call over its median time."""
        return self.flops / self.time_per_call_s

    @property
    def achieved_bytes_s(self) -> float:
        """Bytes/s achieved: the minimum bytes of one call over its median time."""
        return self.min_bytes / self.time_per_call_s

    def flag_codes(self) -> list[str]:
        """The flags' codes, in order."""
        return [f.code for f in self.flags]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, with the flags as {code, message}."""
        from kernelprof.outputs.runfile import to_jsonable

        d = to_jsonable(self)
        d["achieved_flop_s"] = self.achieved_flop_s
        d["achieved_bytes_s"] = self.achieved_bytes_s
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "KernelMeasurement":
        """Inverse of to_json. Files from before the settled-state method (with `trials`) are refused."""
        if "trials" in d and "batches" not in d:
            raise MeasurementError("this kernel measurement was made by the pre-0.2 trial method (no `batches`); "
                                   "its figures can be reprinted but not loaded as a KernelMeasurement")
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["batches"] = tuple(Batch(**b) for b in d.get("batches", ()))
        kw["flags"] = tuple(Flag(**f) for f in d.get("flags", ()))
        for k in ("notes", "segment_t_s", "segment_power_w", "segment_sm_clock_mhz"):
            kw[k] = tuple(d.get(k, ()))
        return cls(**kw)


@dataclass(frozen=True)
class LaunchFacts:
    """How the calls were launched and what they were, for the result."""

    name: str
    flops: float
    min_bytes: float
    dtype: str
    calls_per_launch: int
    input_sets: int
    rotated_bytes: int
    notes: tuple[str, ...] = ()
    flags: tuple[Flag, ...] = ()
    gpu_name: str | None = None
