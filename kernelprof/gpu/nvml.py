"""The one place kernelprof talks to NVML (nvidia-ml-py, imported as `pynvml`).

Everything else calls these functions, so that NVML's errors are mapped once to kernelprof's
exceptions and NVML's units (mW, mJ, microsecond epoch timestamps) are converted once, at the edge.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from kernelprof.errors import NVMLUnavailableError, NotSupportedError

# Field ids (nvml.h); older nvidia-ml-py releases may lack the names, never the ids.
FI_DEV_POWER_AVERAGE = 185
FI_DEV_POWER_INSTANT = 186

_lock = threading.Lock()
_initialized = False
_init_error: str | None = None


def _pynvml():
    try:
        import pynvml  # nvidia-ml-py
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise NVMLUnavailableError(
            "the Python package nvidia-ml-py is not installed: pip install nvidia-ml-py"
        ) from exc
    return pynvml


def init() -> Any:
    """Initialize NVML once per process and return the `pynvml` module.

    Raises NVMLUnavailableError with the reason (no driver library, no permission, no GPU).
    """
    global _initialized, _init_error
    pynvml = _pynvml()
    with _lock:
        if _initialized:
            return pynvml
        if _init_error is not None:
            raise NVMLUnavailableError(_init_error)
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            _init_error = describe_init_failure(exc)
            raise NVMLUnavailableError(_init_error) from exc
        _initialized = True
        return pynvml


def describe_init_failure(exc: Exception) -> str:
    """A sentence saying why NVML could not start and what still works."""
    text = str(exc)
    pynvml = _pynvml()
    if isinstance(exc, getattr(pynvml, "NVMLError_LibraryNotFound", ())):
        why = "the NVIDIA driver library libnvidia-ml.so was not found (no NVIDIA driver here)"
    elif isinstance(exc, getattr(pynvml, "NVMLError_NoPermission", ())):
        why = "NVML refused access (no permission); run as a user allowed to query the GPU"
    elif isinstance(exc, getattr(pynvml, "NVMLError_DriverNotLoaded", ())):
        why = "the NVIDIA kernel driver is not loaded"
    else:
        why = f"NVML failed to initialize ({text})"
    return f"{why}; power sampling is unavailable, but timing and saved-run reports still work"


def available() -> bool:
    try:
        init()
    except NVMLUnavailableError:
        return False
    return True


@contextmanager
def call(what: str) -> Iterator[None]:
    """Map an NVMLError raised inside the block to a kernelprof exception naming `what`."""
    pynvml = _pynvml()
    try:
        yield
    except pynvml.NVMLError as exc:
        if isinstance(exc, getattr(pynvml, "NVMLError_NotSupported", ())):
            raise NotSupportedError(f"{what} is not supported on this GPU/driver") from exc
        if isinstance(exc, getattr(pynvml, "NVMLError_NoPermission", ())):
            raise NVMLUnavailableError(f"{what}: NVML denied permission") from exc
        raise NVMLUnavailableError(f"{what} failed: {exc}") from exc


def optional(fn, *args, default=None):
    """Call an NVML query that some GPUs lack; return `default` instead of raising."""
    pynvml = _pynvml()
    try:
        return fn(*args)
    except pynvml.NVMLError:
        return default


def device_count() -> int:
    pynvml = init()
    with call("nvmlDeviceGetCount"):
        return int(pynvml.nvmlDeviceGetCount())


def handle(index: int) -> Any:
    """NVML handle of the GPU with NVML index `index`."""
    pynvml = init()
    with call(f"nvmlDeviceGetHandleByIndex({index})"):
        return pynvml.nvmlDeviceGetHandleByIndex(index)


def handle_by_uuid(uuid: str) -> Any:
    pynvml = init()
    with call(f"nvmlDeviceGetHandleByUUID({uuid})"):
        return pynvml.nvmlDeviceGetHandleByUUID(uuid)


def as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def driver_version() -> str:
    pynvml = init()
    with call("nvmlSystemGetDriverVersion"):
        return as_str(pynvml.nvmlSystemGetDriverVersion())


def energy_counter_j(h: Any) -> float:
    """Total energy since the driver loaded, in joules (NVML gives mJ; ~4 ms per call on H100)."""
    pynvml = init()
    with call("nvmlDeviceGetTotalEnergyConsumption"):
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1e3


def power_usage_w(h: Any) -> float:
    """NVML's plain power reading (a 1 s moving average on H100), in watts."""
    pynvml = init()
    with call("nvmlDeviceGetPowerUsage"):
        return pynvml.nvmlDeviceGetPowerUsage(h) / 1e3


def power_limit_w(h: Any) -> float | None:
    pynvml = init()
    mw = optional(pynvml.nvmlDeviceGetEnforcedPowerLimit, h)
    return None if mw is None else mw / 1e3


# ---------------------------------------------------------------------------------------------
# Power-sampling reads. Each returns SI units (W, J, MHz, degrees C) on NVML's own timestamps
# (host wall-clock microseconds since the Unix epoch); mW and mJ never leave this module.

# Union member of c_nvmlValue_t for each NVML_VALUE_TYPE_* (nvml.h order).
_VALUE_MEMBER = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
_NVML_SUCCESS = 0
_NVML_ERROR_NOT_FOUND = 6

# Clock-event (throttle) reason bits (nvml.h, nvmlClocksEventReason*); names for reports.
CLOCK_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}
CLOCK_EVENT_GPU_IDLE = 0x1


def clock_event_names(mask: int) -> list[str]:
    """Names of the reason bits set in `mask` (unknown bits as hex)."""
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENT_REASONS)
    if unknown:
        names.append(hex(unknown))
    return names


def _value(v: Any, value_type: int) -> float:
    return float(getattr(v, _VALUE_MEMBER.get(int(value_type), "uiVal")))


def power_samples(h: Any, last_seen_us: int) -> tuple[np.ndarray, np.ndarray]:
    """Buffered total-power samples newer than `last_seen_us`: (t_us int64, power_w float64).

    NVML keeps ~120 samples (~2.4 s on H100); a caller that waits longer loses the oldest ones.
    Pass 0 to get the whole buffer. No new sample is NVML_ERROR_NOT_FOUND, returned here as empty.
    """
    pynvml = init()
    try:
        value_type, samples = pynvml.nvmlDeviceGetSamples(h, pynvml.NVML_TOTAL_POWER_SAMPLES, int(last_seen_us))
    except pynvml.NVMLError as exc:
        if getattr(exc, "value", None) == _NVML_ERROR_NOT_FOUND:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        with call("nvmlDeviceGetSamples(NVML_TOTAL_POWER_SAMPLES)"):
            raise
    n = len(samples)
    t_us = np.fromiter((s.timeStamp for s in samples), dtype=np.int64, count=n)
    member = _VALUE_MEMBER.get(int(value_type), "uiVal")
    mw = np.fromiter((getattr(s.sampleValue, member) for s in samples), dtype=np.float64, count=n)
    return t_us, mw / 1e3


@dataclass(frozen=True)
class FieldReading:
    """One NVML field value: its own timestamp (epoch us), or None where NVML said no."""

    field_id: int
    t_us: int | None
    value: float | None
    error: str | None = None


def field_values(h: Any, field_ids: list[int]) -> list[FieldReading]:
    """Raw field values (no unit conversion) with their timestamps; per-field failures kept apart."""
    pynvml = init()
    with call(f"nvmlDeviceGetFieldValues({field_ids})"):
        values = pynvml.nvmlDeviceGetFieldValues(h, list(field_ids))
    out = []
    for fid, v in zip(field_ids, values):
        if int(v.nvmlReturn) != _NVML_SUCCESS:
            out.append(FieldReading(fid, None, None, error=str(pynvml.NVMLError(int(v.nvmlReturn)))))
        else:
            out.append(FieldReading(fid, int(v.timestamp), _value(v.value, v.valueType)))
    return out


def power_fields_w(h: Any, field_ids: list[int]) -> list[FieldReading]:
    """Power fields (e.g. FI_DEV_POWER_INSTANT, FI_DEV_POWER_AVERAGE) converted from mW to W."""
    return [r if r.value is None else FieldReading(r.field_id, r.t_us, r.value / 1e3)
            for r in field_values(h, field_ids)]


def clock_event_reasons(h: Any) -> int:
    """Bit mask of current clock-event (throttle) reasons; the call was renamed in driver 535."""
    pynvml = init()
    fn = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        getattr(pynvml, "nvmlDeviceGetCurrentClocksThrottleReasons")
    with call("nvmlDeviceGetCurrentClocksEventReasons"):
        return int(fn(h))


def clocks_mhz(h: Any) -> tuple[int, int]:
    """(SM clock, memory clock) in MHz, now."""
    pynvml = init()
    with call("nvmlDeviceGetClockInfo"):
        return (int(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)),
                int(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM)))


def temperature_c(h: Any) -> int:
    pynvml = init()
    with call("nvmlDeviceGetTemperature"):
        return int(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))


def utilization_pct(h: Any) -> tuple[int, int]:
    """(GPU busy %, memory-controller busy %) over NVML's last sample period."""
    pynvml = init()
    with call("nvmlDeviceGetUtilizationRates"):
        u = pynvml.nvmlDeviceGetUtilizationRates(h)
    return int(u.gpu), int(u.memory)


def compute_pids(h: Any) -> list[int]:
    """PIDs of processes with a compute context on the GPU (may be empty inside containers)."""
    pynvml = init()
    with call("nvmlDeviceGetComputeRunningProcesses"):
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
    return [int(p.pid) for p in procs]


def uuid(h: Any) -> str | None:
    pynvml = init()
    return as_str(optional(pynvml.nvmlDeviceGetUUID, h, default="")) or None


def name(h: Any) -> str:
    pynvml = init()
    with call("nvmlDeviceGetName"):
        return as_str(pynvml.nvmlDeviceGetName(h))


# ---------------------------------------------------------------------------------------------
# Device facts and library status (for kernelprof.gpu.devices and `kernelprof info`, through the
# NVIDIA reader's registration): optional queries give None where the GPU or driver lacks them.

def cuda_driver_version() -> str | None:
    """The CUDA version the driver supports ("13.0"), or None on drivers without the _v2 call."""
    pynvml = init()
    v = optional(getattr(pynvml, "nvmlSystemGetCudaDriverVersion_v2", lambda: None))
    return None if v is None else f"{v // 1000}.{v % 1000 // 10}"


def status() -> dict[str, Any]:
    """{"available", "driver_version", "cuda_driver_version", "message"}: what NVML says about itself."""
    try:
        init()
        out: dict[str, Any] = {"available": True, "driver_version": driver_version(), "message": "ok"}
    except NVMLUnavailableError as exc:
        return {"available": False, "message": str(exc)}
    try:
        cuda = cuda_driver_version()
    except Exception:  # noqa: BLE001 - optional extra; older drivers lack the _v2 call
        cuda = None
    if cuda is not None:
        out["cuda_driver_version"] = cuda
    return out


def device_facts(index: int, driver: str | None) -> dict[str, Any]:
    """GPUFacts fields of the GPU with NVML index `index` (power in W, memory in bytes)."""
    pynvml = init()
    h = handle(index)
    opt = optional
    ecc = opt(pynvml.nvmlDeviceGetEccMode, h)
    mig = opt(pynvml.nvmlDeviceGetMigMode, h)
    default_limit = opt(pynvml.nvmlDeviceGetPowerManagementDefaultLimit, h)
    mem = opt(pynvml.nvmlDeviceGetMemoryInfo, h)
    pci = opt(pynvml.nvmlDeviceGetPciInfo, h)
    return {
        "nvml_index": index,
        "name": as_str(pynvml.nvmlDeviceGetName(h)),
        "uuid": as_str(opt(pynvml.nvmlDeviceGetUUID, h, default="")) or None,
        "driver_version": driver,
        "power_limit_w": power_limit_w(h),
        "default_power_limit_w": None if default_limit is None else default_limit / 1e3,
        "sm_clock_mhz": opt(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM),
        "mem_clock_mhz": opt(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM),
        "max_sm_clock_mhz": opt(pynvml.nvmlDeviceGetMaxClockInfo, h, pynvml.NVML_CLOCK_SM),
        "max_mem_clock_mhz": opt(pynvml.nvmlDeviceGetMaxClockInfo, h, pynvml.NVML_CLOCK_MEM),
        "temperature_c": opt(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU),
        "ecc_enabled": None if ecc is None else bool(ecc[0]),
        "mig_enabled": None if mig is None else bool(mig[0]),
        "pci_bus_id": None if pci is None else as_str(pci.busId),
        "memory_total_bytes": None if mem is None else int(mem.total),
    }


def all_device_facts() -> list[dict[str, Any]]:
    """device_facts of every GPU NVML sees; [] where NVML is unavailable."""
    try:
        init()
        count = device_count()
        driver = driver_version()
    except NVMLUnavailableError:
        return []
    return [device_facts(i, driver) for i in range(count)]
