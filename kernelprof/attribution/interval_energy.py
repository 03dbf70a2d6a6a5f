"""What attribution returns: each interval's energy per GPU and summed, the counter check beside it,
and the flags that say why a figure could be wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

from kernelprof.attribution.counter_discipline import DisciplinedEnergy, DisciplineSummary
from kernelprof.attribution.sensor_profile import SensorProfile


@dataclass(frozen=True)
class Flag:
    code: str  # sample_gap | samples_lost | short_interval | outside_trace | throttled | clocks_moved |
    #            other_processes | fallback_method | synthetic_trace
    message: str


@dataclass(frozen=True)
class CounterCheck:
    """The energy counter between two marks, and the samples integrated over the same window."""

    t0_ns: int
    t1_ns: int
    counter_energy_j: float
    samples_energy_j: float | None
    diff_j: float | None  # samples - counter
    diff_pct: float | None  # of the counter
    precise: bool  # both marks pinned to a counter update (read until it stepped)

    @property
    def window_s(self) -> float:
        return (self.t1_ns - self.t0_ns) / 1e9


@dataclass(frozen=True)
class GPUIntervalEnergy:
    gpu: int
    uuid: str | None
    energy_j: float | None
    mean_power_w: float | None
    method: str  # nvml_samples | instant_field | average_field | none
    n_samples: int
    coverage: float  # fraction of the interval inside the readings' span, holes excluded
    energy_instant_j: float | None
    mean_average_field_w: float | None
    counter: CounterCheck | None
    counter_note: str | None
    flags: tuple[Flag, ...]
    # energy_j is the samples disciplined by the counter where `discipline` is set (its raw_energy_j
    # keeps the samples' own figure); None: raw samples, and discipline_note says why
    discipline: DisciplinedEnergy | None = None
    discipline_note: str | None = None

    @property
    def samples_energy_j(self) -> float | None:
        return self.discipline.raw_energy_j if self.discipline is not None else self.energy_j


@dataclass(frozen=True)
class IntervalEnergy:
    """One interval's energy, summed over GPUs, with each GPU's numbers and the flags."""

    name: str
    path: str
    depth: int
    kind: str
    t0_ns: int
    t1_ns: int
    time_s: float
    energy_j: float | None
    mean_power_w: float | None
    method: str
    gpus: tuple[GPUIntervalEnergy, ...]
    flags: tuple[Flag, ...]

    @property
    def counter_energy_j(self) -> float | None:
        checks = [g.counter for g in self.gpus]
        return None if any(c is None for c in checks) else sum(c.counter_energy_j for c in checks)

    def flag_codes(self) -> list[str]:
        return [f.code for f in self.flags]

    @property
    def samples_energy_j(self) -> float | None:
        """The raw buffered samples' energy, before the counter discipline."""
        raw = [g.samples_energy_j for g in self.gpus]
        return None if any(e is None for e in raw) else float(sum(raw))


@dataclass(frozen=True)
class Attribution:
    window: IntervalEnergy
    intervals: tuple[IntervalEnergy, ...]
    sensor_profiles: tuple[SensorProfile, ...]  # one per GPU, in trace order
    provenance: str
    notes: tuple[str, ...]
    disciplines: tuple[DisciplineSummary | None, ...] = ()  # one per GPU; None: raw samples

    def by_path(self, path: str) -> IntervalEnergy:
        for i in self.intervals:
            if i.path == path:
                return i
        raise KeyError(path)
