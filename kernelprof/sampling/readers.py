"""Power readers: the questions the sampler core asks of a GPU's power sources, and NVML's answers.

A `Reader` answers one question per call, in SI units, on NVML's epoch-microsecond clock: open the
GPUs, probe which sources they have, drain the buffered power samples, read the instant and average
power fields, the energy counter, the state (clocks, temperature, throttle reasons, utilization)
and the compute processes. `NVMLReader` asks NVML through `kernelprof.gpu.nvml` (units converted
there); `kernelprof.sampling.replay.ReplayReader` answers from a recorded trace. `make_reader`
builds either from a JSON-able spec, which is what a sampler child process receives.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from kernelprof import errors
from kernelprof.errors import NotSupportedError, NVMLUnavailableError
from kernelprof.sampling.powertrace import Sources


@dataclass(frozen=True)
class GPUIdentity:
    gpu: int  # NVML index
    uuid: str | None
    name: str


@dataclass(frozen=True)
class StateReading:
    sm_clock_mhz: float = float("nan")
    mem_clock_mhz: float = float("nan")
    temperature_c: float = float("nan")
    clock_event_reasons: int = -1
    util_gpu_pct: float = float("nan")
    util_mem_pct: float = float("nan")


class Reader(Protocol):
    """One NVML question per call. `k` is the position in the GPU list given to `open`."""

    def open(self, gpus: list[int]) -> list[GPUIdentity]: ...
    def now_us(self) -> int: ...
    def probe(self, k: int) -> Sources: ...
    def samples(self, k: int, last_seen_us: int) -> tuple[np.ndarray, np.ndarray]: ...
    def fields(self, k: int) -> tuple[tuple[int, float] | None, tuple[int, float] | None]: ...
    def counter_j(self, k: int) -> float: ...
    def state(self, k: int, sources: Sources) -> StateReading: ...
    def compute_pids(self, k: int) -> list[int]: ...


class NVMLReader:
    """The real reader: every call goes through kernelprof.gpu.nvml (units converted there)."""

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def open(self, gpus: list[int]) -> list[GPUIdentity]:
        from kernelprof.gpu import nvml

        nvml.init()
        count = nvml.device_count()
        bad = [g for g in gpus if not 0 <= g < count]
        if bad:
            raise errors.UsageError(f"NVML sees GPUs 0..{count - 1}, got {bad}")
        self._handles = [nvml.handle(g) for g in gpus]
        return [GPUIdentity(g, nvml.uuid(h), nvml.name(h)) for g, h in zip(gpus, self._handles)]

    def now_us(self) -> int:
        return time.time_ns() // 1000

    def probe(self, k: int) -> Sources:
        from kernelprof.gpu import nvml

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
            inst, avg = nvml.power_fields_w(h, [nvml.FI_DEV_POWER_INSTANT, nvml.FI_DEV_POWER_AVERAGE])
            for name, r in (("instant", inst), ("average", avg)):
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
        from kernelprof.gpu import nvml

        return nvml.power_samples(self._handles[k], last_seen_us)

    def fields(self, k: int):
        from kernelprof.gpu import nvml

        inst, avg = nvml.power_fields_w(self._handles[k], [nvml.FI_DEV_POWER_INSTANT, nvml.FI_DEV_POWER_AVERAGE])
        return tuple(None if r.value is None else (r.t_us, r.value) for r in (inst, avg))

    def counter_j(self, k: int) -> float:
        from kernelprof.gpu import nvml

        return nvml.energy_counter_j(self._handles[k])

    def state(self, k: int, sources: Sources) -> StateReading:
        from kernelprof.gpu import nvml

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
        from kernelprof.gpu import nvml

        return nvml.compute_pids(self._handles[k])


def make_reader(spec: dict[str, Any]) -> Reader:
    """Build a reader from a JSON-able spec (what a child process receives)."""
    kind = spec.get("kind", "nvml")
    if kind == "nvml":
        return NVMLReader()
    if kind == "replay":
        from kernelprof.sampling.replay import ReplayReader

        return ReplayReader.from_run_file(spec["path"], speed=spec.get("speed", 1.0),
                                          fail_after_s=spec.get("fail_after_s"))
    raise errors.UsageError(f"unknown reader kind {kind!r}; expected 'nvml' or 'replay'")
