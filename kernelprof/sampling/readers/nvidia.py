"""NVIDIA's reader: every call goes through kernelprof.gpu.nvml, where mW and mJ become W and J.

Channels (H100, driver 580; SENSOR_FACTS.md): "samples" is NVML's buffered total-power samples
(nvmlDeviceGetSamples, ~20 ms apart, ~120 kept); "instant" and "average" are the power fields
FI_DEV_POWER_INSTANT and FI_DEV_POWER_AVERAGE (~100 ms updates; the average spans ~1 s).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from kernelprof import errors
from kernelprof.errors import NotSupportedError, NVMLUnavailableError
from kernelprof.gpu import nvml
from kernelprof.sampling.powertrace import Sources
from kernelprof.sampling.readers.common import GPUIdentity, PowerChannel, Reader, StateReading, register_reader

# the NVML power field read for each polled channel
_FIELD_IDS = {"instant": nvml.FI_DEV_POWER_INSTANT, "average": nvml.FI_DEV_POWER_AVERAGE}


class NVMLReader(Reader):
    vendor = "nvidia"
    provenance = "measured"
    channels = (
        PowerChannel("samples", buffered=True, window_s=0.020, update_period_s=0.020, capacity=119,
                     note="nvmlDeviceGetSamples(NVML_TOTAL_POWER_SAMPLES)"),
        PowerChannel("instant", buffered=False, window_s=None, update_period_s=0.100,
                     note="field FI_DEV_POWER_INSTANT"),
        PowerChannel("average", buffered=False, window_s=1.0, update_period_s=0.100,
                     note="field FI_DEV_POWER_AVERAGE"),
    )

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def open(self, gpus: list[int]) -> list[GPUIdentity]:
        nvml.init()
        count = nvml.device_count()
        bad = [g for g in gpus if not 0 <= g < count]
        if bad:
            raise errors.UsageError(f"NVML sees GPUs 0..{count - 1}, got {bad}")
        self._handles = [nvml.handle(g) for g in gpus]
        return [GPUIdentity(g, nvml.uuid(h), nvml.name(h)) for g, h in zip(gpus, self._handles)]

    def probe(self, k: int) -> Sources:
        h = self._handles[k]
        found: dict[str, bool] = {}
        missing: dict[str, str] = {}

        def attempt(name: str, fn) -> None:
            try:
                fn()
                found[name] = True
            except (NotSupportedError, NVMLUnavailableError) as exc:
                missing[name] = str(exc)

        attempt("samples", lambda: nvml.power_samples(h, 0))
        try:
            readings = nvml.power_fields_w(h, list(_FIELD_IDS.values()))
            for name, r in zip(_FIELD_IDS, readings):
                if r.value is None:
                    missing[name] = f"field {r.field_id}: {r.error}"
                else:
                    found[name] = True
        except (NotSupportedError, NVMLUnavailableError) as exc:
            missing["instant"] = missing["average"] = str(exc)
        attempt("counter", lambda: nvml.energy_counter_j(h))
        attempt("clocks", lambda: nvml.clocks_mhz(h))
        attempt("throttle", lambda: nvml.clock_event_reasons(h))
        attempt("utilization", lambda: nvml.utilization_pct(h))
        attempt("processes", lambda: nvml.compute_pids(h))
        return Sources(**found, missing=missing)

    def samples(self, k: int, last_seen_us: int) -> tuple[np.ndarray, np.ndarray]:
        return nvml.power_samples(self._handles[k], last_seen_us)

    def poll_power_w(self, k: int) -> dict[str, tuple[int, float]]:
        readings = nvml.power_fields_w(self._handles[k], list(_FIELD_IDS.values()))
        return {name: (r.t_us, r.value) for name, r in zip(_FIELD_IDS, readings) if r.value is not None}

    def counter_j(self, k: int) -> float:
        return nvml.energy_counter_j(self._handles[k])

    def state(self, k: int, sources: Sources) -> StateReading:
        h = self._handles[k]
        sm = mem = temp = util_g = util_m = float("nan")
        reasons = -1
        if sources.clocks:
            sm, mem = nvml.clocks_mhz(h)
            try:
                temp = float(nvml.temperature_c(h))
            except (NotSupportedError, NVMLUnavailableError):
                pass  # some boards hide the temperature; clocks still count
        if sources.throttle:
            reasons = nvml.clock_event_reasons(h)
        if sources.utilization:
            util_g, util_m = nvml.utilization_pct(h)
        return StateReading(sm, mem, temp, reasons, util_g, util_m)

    def compute_pids(self, k: int) -> list[int]:
        return nvml.compute_pids(self._handles[k])


# Device facts and status come from kernelprof.gpu.nvml, which stays the one module that calls
# pynvml: NVML-only facts (ECC, MIG, PCI bus id) live there too, beside the error mapping.
register_reader("nvml", lambda spec: NVMLReader(), vendor="nvidia",
                devices=lambda: nvml.all_device_facts(), status=lambda: nvml.status())
