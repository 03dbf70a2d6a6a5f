"""What `kernelprof counters` and `kernelprof utilization` measure, as one run of kind "counters":
Nsight Compute counters beside the analytic counts (kernelprof.estimates.counters.run), NVML's
GPU utilization beside the achieved fraction of peak (kernelprof.estimates.utilization), or NVML's
energy sources side by side (kernelprof.methods.nvml_crosscheck). Any section may be absent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CountersRun:
    """The payload of a run of kind "counters"; `energy` is left out of the file when None."""

    counters: Any = None  # kernelprof.estimates.counters.run.CountersResult
    utilization: Any = None  # kernelprof.estimates.utilization.UtilizationView
    energy: Any = None  # kernelprof.methods.nvml_crosscheck.EnergyCrossCheck

    def to_json(self) -> dict[str, Any]:
        from kernelprof.outputs.runfile import to_jsonable

        payload: dict[str, Any] = {"counters": self.counters, "utilization": self.utilization}
        if self.energy is not None:
            payload["energy"] = self.energy.to_json()
        return to_jsonable(payload)


def counters_with_utilization(op: str, variant: str | None = None, shape: str | None = None, dtype: str = "bf16", *,
                              ncu: str | None = None, device: int = 0, cache_control: str = "all",
                              timeout_s: float = 600.0, seed: int = 0, raw_output_path: str | Path | None = None,
                              utilization: bool = False, window_s: float = 2.0) -> CountersRun:
    """One call under ncu; with `utilization`, NVML's utilization over `window_s` of the same variant and shape."""
    from kernelprof.estimates.counters.run import measure_counters

    result = measure_counters(op, variant, shape, dtype, ncu=ncu, device=device, cache_control=cache_control,
                              timeout_s=timeout_s, seed=seed, raw_output_path=raw_output_path)
    util = None
    if utilization:
        from kernelprof.estimates.utilization import measure_utilization

        util = measure_utilization(op, result.variant, result.shape, dtype, window_s=window_s, device_index=device,
                                   seed=seed)
    return CountersRun(counters=result, utilization=util)


def utilization_only(op: str, variant: str | None = None, shape: str | None = None, dtype: str = "bf16", *,
                     window_s: float = 2.0, device: int = 0, sample_hz: float = 20.0, seed: int = 0) -> CountersRun:
    """NVML's utilization while the kernel runs back to back, beside its achieved fraction of peak."""
    from kernelprof.estimates.utilization import measure_utilization

    return CountersRun(utilization=measure_utilization(op, variant, shape, dtype, window_s=window_s,
                                                       device_index=device, sample_hz=sample_hz, seed=seed))


def energy_sources(from_run: str | Path | None = None) -> CountersRun:
    """NVML's energy sources against each other: from a saved `kernelprof sensor` run, or measured now."""
    from kernelprof.methods.nvml_crosscheck import from_sensor_run, measure_now

    return CountersRun(energy=from_sensor_run(from_run) if from_run else measure_now())


def save_counters_run(run: CountersRun, out: str | Path) -> Path:
    """Write `run` as a run file of kind "counters"; returns its path."""
    from kernelprof.outputs.runfile import save_run

    return save_run(out, kind="counters", payload=run.to_json())
