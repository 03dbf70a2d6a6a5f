"""The one place kernelprof talks to NVML (nvidia-ml-py, imported as `pynvml`).

Everything else calls these functions, so that NVML's errors are mapped once to kernelprof's
exceptions and NVML's units (mW, mJ, microsecond epoch timestamps) are converted once, at the edge.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

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
