"""PowerTrace: what the sampler read, as numpy arrays per source and GPU, on NVML's clock.

Every timestamp is host wall-clock microseconds since the Unix epoch (`*_t_us`, int64), the clock
NVML stamps its samples and fields with; state readings (clocks, temperature, throttle reasons),
which NVML does not stamp, carry `time.time_ns() // 1000` taken at the call. Power is in watts,
energy in joules.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

SOURCE_NAMES = ("samples", "instant", "average", "counter", "clocks", "throttle", "utilization", "processes")


@dataclass(frozen=True)
class Sources:
    """Which NVML sources this GPU answered at start; `missing` says why the others are absent."""

    samples: bool = False
    instant: bool = False
    average: bool = False
    counter: bool = False
    clocks: bool = False
    throttle: bool = False
    utilization: bool = False
    processes: bool = False
    missing: dict[str, str] = field(default_factory=dict)

    def available(self) -> list[str]:
        return [n for n in SOURCE_NAMES if getattr(self, n)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Sources":
        return cls(**{k: d.get(k, False) for k in SOURCE_NAMES}, missing=dict(d.get("missing") or {}))


@dataclass(frozen=True)
class Gap:
    """A stretch where a source has no readings.

    kind: "drain_late" (the sampler drained the buffer too late: samples lost by us),
    "sensor_gap" (drained in time, but the sensor itself skipped), "poll_late" (a field was
    polled too late and updates were overwritten), "stalled" (a source stopped
    updating), "source_failed" (a read started failing mid-run).
    """

    source: str
    kind: str
    t0_us: int
    t1_us: int
    missing_samples: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Gap":
        return cls(**{f.name: d.get(f.name) for f in fields(cls)})


_ARRAYS = {
    "samples_t_us": np.int64, "samples_w": np.float64,
    "instant_t_us": np.int64, "instant_w": np.float64,
    "average_t_us": np.int64, "average_w": np.float64,
    "counter_t_us": np.int64, "counter_j": np.float64, "counter_precise": np.bool_,
    "state_t_us": np.int64, "sm_clock_mhz": np.float64, "mem_clock_mhz": np.float64,
    "temperature_c": np.float64, "clock_event_reasons": np.int64,
    "util_gpu_pct": np.float64, "util_mem_pct": np.float64,
    "process_t_us": np.int64, "other_processes": np.int64,
}


def _empty(name: str) -> np.ndarray:
    return np.empty(0, _ARRAYS[name])


@dataclass(frozen=True, eq=False)
class GPUTrace:
    """One GPU's readings. Missing values in state arrays are NaN (or -1 for reasons)."""

    gpu: int  # NVML index
    uuid: str | None
    name: str
    sources: Sources
    samples_t_us: np.ndarray = field(default_factory=lambda: _empty("samples_t_us"))
    samples_w: np.ndarray = field(default_factory=lambda: _empty("samples_w"))
    instant_t_us: np.ndarray = field(default_factory=lambda: _empty("instant_t_us"))
    instant_w: np.ndarray = field(default_factory=lambda: _empty("instant_w"))
    average_t_us: np.ndarray = field(default_factory=lambda: _empty("average_t_us"))
    average_w: np.ndarray = field(default_factory=lambda: _empty("average_w"))
    counter_t_us: np.ndarray = field(default_factory=lambda: _empty("counter_t_us"))
    counter_j: np.ndarray = field(default_factory=lambda: _empty("counter_j"))
    counter_precise: np.ndarray = field(default_factory=lambda: _empty("counter_precise"))
    state_t_us: np.ndarray = field(default_factory=lambda: _empty("state_t_us"))
    sm_clock_mhz: np.ndarray = field(default_factory=lambda: _empty("sm_clock_mhz"))
    mem_clock_mhz: np.ndarray = field(default_factory=lambda: _empty("mem_clock_mhz"))
    temperature_c: np.ndarray = field(default_factory=lambda: _empty("temperature_c"))
    clock_event_reasons: np.ndarray = field(default_factory=lambda: _empty("clock_event_reasons"))
    util_gpu_pct: np.ndarray = field(default_factory=lambda: _empty("util_gpu_pct"))
    util_mem_pct: np.ndarray = field(default_factory=lambda: _empty("util_mem_pct"))
    process_t_us: np.ndarray = field(default_factory=lambda: _empty("process_t_us"))
    other_processes: np.ndarray = field(default_factory=lambda: _empty("other_processes"))
    gaps: tuple[Gap, ...] = ()
    drains: int = 0
    max_drain_interval_s: float = 0.0
    call_latency_us: dict[str, float] = field(default_factory=dict)  # median per source

    def lost_samples(self) -> float:
        """Samples the sampler lost by draining late (not the sensor's own skips)."""
        return float(sum(g.missing_samples for g in self.gaps if g.source == "samples" and g.kind == "drain_late"))

    def sm_clock_over(self, spans_ns: "list[tuple[int, int]] | tuple[tuple[int, int], ...]") -> tuple[float | None, int]:
        """Mean SM clock (MHz) of the state readings inside the spans [(t0_ns, t1_ns), ...], and their count.

        The readings are instantaneous and come at a fixed rate (10 Hz by default), so their mean is
        a time average; a span shorter than the rate holds one reading or none.
        """
        t_ns = self.state_t_us.astype(np.int64) * 1000
        inside = np.zeros(len(t_ns), dtype=bool)
        for t0, t1 in spans_ns:
            inside |= (t_ns >= t0) & (t_ns <= t1)
        sm = self.sm_clock_mhz[inside]
        sm = sm[np.isfinite(sm)]
        return (float(np.mean(sm)) if len(sm) else None), int(len(sm))

    def sample_period_s(self, default: float = 0.020) -> float:
        """Median spacing of the buffered samples, or `default` with fewer than 3 samples."""
        if len(self.samples_t_us) < 3:
            return default
        return float(np.median(np.diff(self.samples_t_us))) / 1e6


@dataclass(frozen=True, eq=False)
class PowerTrace:
    """Everything one sampler run read, for each GPU it watched.

    `provenance` is "measured" for a real NVML run, "replayed" for a run of the sampler over a
    recorded trace, "synthetic" for made-up traces used to test the math (never a measurement).
    """

    mode: str
    start_t_us: int
    stop_t_us: int
    own_pid: int
    gpus: tuple[GPUTrace, ...]
    config: dict[str, Any] = field(default_factory=dict)
    provenance: str = "measured"
    # which reader read it: {"vendor", "reader", "channels": [PowerChannel fields]}; {} in older files
    reader: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Seconds from the trace start to its stop."""
        return (self.stop_t_us - self.start_t_us) / 1e6

    def gpu(self, nvml_index: int) -> GPUTrace:
        """The readings of the GPU with this NVML index."""
        for g in self.gpus:
            if g.gpu == nvml_index:
                return g
        raise KeyError(f"trace has no GPU with NVML index {nvml_index}; it has {[g.gpu for g in self.gpus]}")

    def to_run_parts(self, prefix: str = "trace") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON metadata, side arrays) for kernelprof.outputs.runfile.save_run."""
        arrays: dict[str, np.ndarray] = {}
        meta_gpus = []
        for k, g in enumerate(self.gpus):
            for name, dtype in _ARRAYS.items():
                arrays[f"{prefix}.gpu{k}.{name}"] = np.asarray(getattr(g, name), dtype)
            meta_gpus.append({"gpu": g.gpu, "uuid": g.uuid, "name": g.name, "sources": g.sources.to_json(),
                              "gaps": [x.to_json() for x in g.gaps], "drains": g.drains,
                              "max_drain_interval_s": g.max_drain_interval_s,
                              "call_latency_us": dict(g.call_latency_us)})
        meta = {"mode": self.mode, "start_t_us": int(self.start_t_us), "stop_t_us": int(self.stop_t_us),
                "own_pid": self.own_pid, "config": self.config, "provenance": self.provenance,
                "array_prefix": prefix, "gpus": meta_gpus}
        if self.reader:
            meta["reader"] = self.reader
        return meta, arrays

    @classmethod
    def from_run_parts(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "PowerTrace":
        """Rebuild a trace from a run file's metadata and arrays (see to_run_parts)."""
        prefix = meta.get("array_prefix", "trace")
        gpus = []
        for k, mg in enumerate(meta["gpus"]):
            kw = {name: np.asarray(arrays[f"{prefix}.gpu{k}.{name}"], dtype)
                  if f"{prefix}.gpu{k}.{name}" in arrays else _empty(name)
                  for name, dtype in _ARRAYS.items()}
            gpus.append(GPUTrace(gpu=mg["gpu"], uuid=mg.get("uuid"), name=mg.get("name", "?"),
                                 sources=Sources.from_json(mg["sources"]),
                                 gaps=tuple(Gap.from_json(x) for x in mg.get("gaps", [])),
                                 drains=mg.get("drains", 0), max_drain_interval_s=mg.get("max_drain_interval_s", 0.0),
                                 call_latency_us=dict(mg.get("call_latency_us") or {}), **kw))
        return cls(mode=meta["mode"], start_t_us=meta["start_t_us"], stop_t_us=meta["stop_t_us"],
                   own_pid=meta.get("own_pid", 0), gpus=tuple(gpus), config=dict(meta.get("config") or {}),
                   provenance=meta.get("provenance", "measured"), reader=dict(meta.get("reader") or {}))

    def with_provenance(self, provenance: str) -> "PowerTrace":
        """A copy saying where its readings came from ("nvml", "replay", "synthetic")."""
        return replace(self, provenance=provenance)
