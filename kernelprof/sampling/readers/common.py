"""What a power source provides to the sampler, and the registry that finds one by name or vendor.

A `Reader` is one vendor's (or one recording's) answer to the sampler core's questions, one
question per call, in SI units (W, J, MHz, degrees C) on the host's epoch-microsecond clock:
open the GPUs, probe which sources each has, drain the buffered power channel, poll the other
power channels, read the energy counter, the state (clocks, temperature, throttle reasons,
utilization) and the compute processes. Vendor units (NVML's mW and mJ) are converted in the
vendor's own edge module, never here or in the core.

A reader declares its power channels (`PowerChannel`: name, averaging window, update period).
Their names are those of the run file's power arrays (`CHANNEL_NAMES`), so every reader's trace
loads, replays and reports the same way; a vendor whose sensor is new maps it onto the nearest of
these and says so in `PowerChannel.note`.

The registry maps a name ("nvml", "replay", ...) to a factory that builds a reader from a JSON-able
spec (what a sampler child process receives), and optionally to the vendor's device inventory and
status (what `kernelprof info` and `discover_gpus` show). A new vendor is one new file that
subclasses `Reader` and calls `register_reader`; built-in ones are listed in `BUILTIN_MODULES`, and
a spec's "module" key names a module to import first (so a child process finds the registration).
"""
from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from kernelprof import errors
from kernelprof.errors import NotSupportedError
from kernelprof.sampling.powertrace import Sources

# Power channels a trace stores (kernelprof.sampling.powertrace.GPUTrace `<name>_t_us`, `<name>_w`).
CHANNEL_NAMES = ("samples", "instant", "average")


@dataclass(frozen=True)
class GPUIdentity:
    gpu: int  # the reader's device index (the NVML index for NVIDIA)
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


@dataclass(frozen=True)
class PowerChannel:
    """One power reading a reader offers, always in watts.

    `buffered`: the device keeps a history of stamped readings that the sampler drains
    (`Reader.samples`); otherwise it holds only the latest value, which the sampler polls
    (`Reader.poll_power_w`). `window_s`: the span one reading averages over (None: not documented).
    A buffered channel's `update_period_s` and `capacity` set the sampler's default drain schedule
    (SamplerConfig.for_channels).
    """

    name: str  # one of CHANNEL_NAMES
    buffered: bool
    window_s: float | None
    update_period_s: float | None
    capacity: int | None = None  # readings a buffered channel keeps (None: not known)
    note: str = ""


class Reader(ABC):
    """One power source's answers, one per call. `k` is the position in the list given to `open`.

    Subclasses implement `open`, `probe` and the power channels they declare; the energy counter,
    state and process list default to "not supported" / empty so that a source without them is
    a short file. Raise NotSupportedError or NVMLUnavailableError for a source that stops answering:
    the core then drops that source and records a gap.
    """

    vendor: str = "unknown"
    provenance: str = "measured"  # "replayed" for recordings, "synthetic" for test doubles
    channels: tuple[PowerChannel, ...] = ()

    @abstractmethod
    def open(self, gpus: list[int]) -> list[GPUIdentity]:
        """Start reading the vendor's devices `gpus` (its own indices); their identities, in order."""

    @abstractmethod
    def probe(self, k: int) -> Sources:
        """Which sources GPU k answers now (a channel's name is its `Sources` flag)."""

    def now_us(self) -> int:
        """The reader's clock, epoch microseconds (a replay drives its own)."""
        return time.time_ns() // 1000

    def samples(self, k: int, last_seen_us: int) -> tuple[np.ndarray, np.ndarray]:
        """The buffered channel's readings newer than `last_seen_us`: (t_us int64, power_w float64)."""
        raise NotSupportedError(f"{self.vendor} reader has no buffered power channel")

    def poll_power_w(self, k: int) -> dict[str, tuple[int, float]]:
        """Latest (t_us, power_w) of each polled channel that has a value now; absent ones left out."""
        raise NotSupportedError(f"{self.vendor} reader has no polled power channel")

    def counter_j(self, k: int) -> float:
        """Energy counter in joules (monotonic since some origin)."""
        raise NotSupportedError(f"{self.vendor} reader has no energy counter")

    def state(self, k: int, sources: Sources) -> StateReading:
        """Clocks, utilization and temperature of GPU k now (all None where the vendor has none)."""
        return StateReading()

    def compute_pids(self, k: int) -> list[int]:
        """Processes with compute work on GPU k (to flag measurements shared with others)."""
        return []

    def polled_channels(self) -> list[str]:
        """Names of the channels read by polling (not buffered)."""
        return [c.name for c in self.channels if not c.buffered]

    def describe(self) -> dict[str, Any]:
        """What the trace records about its reader (PowerTrace.reader)."""
        return {"vendor": self.vendor, "reader": type(self).__name__,
                "channels": [asdict(c) for c in self.channels]}


def check_channels(reader: Reader) -> None:
    """Refuse a reader whose channels a trace could not store (said once, at open)."""
    bad = [c.name for c in reader.channels if c.name not in CHANNEL_NAMES]
    buffered = [c.name for c in reader.channels if c.buffered]
    if bad:
        raise errors.UsageError(f"{type(reader).__name__} declares power channels {bad}; a trace stores "
                                f"{list(CHANNEL_NAMES)}: map the sensor onto one of them and say so in its note")
    if buffered not in ([], ["samples"]):
        raise errors.UsageError(f"{type(reader).__name__}: only the 'samples' channel can be buffered, got {buffered}")


# -- registry -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReaderEntry:
    name: str
    factory: Callable[[dict[str, Any]], Reader]
    vendor: str | None = None  # None: not a device vendor (a replay)
    devices: Callable[[], list[dict[str, Any]]] | None = None  # GPUFacts fields per visible device
    status: Callable[[], dict[str, Any]] | None = None  # {"available": bool, "message": str, ...}


_REGISTRY: dict[str, ReaderEntry] = {}
# Imported on first lookup, so that `import kernelprof` stays light; each registers itself.
BUILTIN_MODULES = ("kernelprof.sampling.readers.nvidia", "kernelprof.sampling.replay")
_builtins_loaded = False


def register_reader(name: str, factory: Callable[[dict[str, Any]], Reader], *, vendor: str | None = None,
                    devices: Callable[[], list[dict[str, Any]]] | None = None,
                    status: Callable[[], dict[str, Any]] | None = None, replace: bool = False) -> None:
    """Make `make_reader({"kind": name, ...})` call `factory(spec)`.

    `devices` lists the vendor's visible GPUs as GPUFacts fields (merged with CUDA's by UUID in
    kernelprof.gpu.devices); `status` says whether the vendor library answers, for `kernelprof info`.
    """
    if name in _REGISTRY and not replace:
        raise errors.UsageError(f"a reader named {name!r} is already registered (pass replace=True)")
    _REGISTRY[name] = ReaderEntry(name, factory, vendor, devices, status)


def unregister_reader(name: str) -> None:
    _REGISTRY.pop(name, None)


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)  # each registers itself, once (imports are cached)
        _builtins_loaded = True


def reader_entries() -> list[ReaderEntry]:
    _load_builtins()
    return list(_REGISTRY.values())


def reader_entry(name: str | None = None, *, vendor: str | None = None) -> ReaderEntry:
    """The entry registered as `name`, or the first one registered for `vendor`."""
    _load_builtins()
    if name is not None:
        if name not in _REGISTRY:
            raise errors.UsageError(f"unknown reader kind {name!r}; registered: {sorted(_REGISTRY)}")
        return _REGISTRY[name]
    for e in _REGISTRY.values():
        if vendor is not None and e.vendor == vendor:
            return e
    raise errors.UsageError(f"no reader registered for vendor {vendor!r}; "
                            f"registered vendors: {sorted({e.vendor for e in _REGISTRY.values() if e.vendor})}")


def make_reader(spec: dict[str, Any]) -> Reader:
    """Build a reader from a JSON-able spec: {"kind": name} or {"vendor": v}, plus the reader's own keys.

    {"module": "pkg.mod"} imports that module first, for readers registered outside kernelprof
    (a sampler child process starts with only the built-in ones).
    """
    if spec.get("module"):
        importlib.import_module(spec["module"])
    if "kind" not in spec and "vendor" in spec:
        entry = reader_entry(vendor=spec["vendor"])
    else:
        entry = reader_entry(spec.get("kind", "nvml"))
    return entry.factory(spec)


def vendor_devices() -> list[dict[str, Any]]:
    """Every registered vendor's visible GPUs (GPUFacts fields); a vendor whose library is absent gives []."""
    out: list[dict[str, Any]] = []
    for e in reader_entries():
        if e.devices is not None:
            out.extend(e.devices())
    return out


def vendor_status(name: str) -> dict[str, Any]:
    """What the reader `name`'s vendor library says about itself ({"available": ..., "message": ...})."""
    e = reader_entry(name)
    if e.status is None:
        return {"available": True, "message": "ok"}
    return e.status()
