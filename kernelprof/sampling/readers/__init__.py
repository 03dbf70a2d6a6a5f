"""Power readers: the abstract `Reader` a power source implements, the registry, and the vendors.

- `common`: `Reader` (what a sample source provides: power channels in W with their averaging
  windows, an energy counter, clocks/utilization, device identity), `PowerChannel`, and the registry
  (`register_reader`, `make_reader`, `reader_entry`, `vendor_devices`, `vendor_status`).
- `nvidia`: `NVMLReader`, through kernelprof.gpu.nvml (registered as "nvml", vendor "nvidia").
- kernelprof.sampling.replay: `ReplayReader`, a recorded trace (registered as "replay").

A new vendor is one new file here: subclass `Reader`, call `register_reader`, and add the module to
`common.BUILTIN_MODULES`.
"""
from kernelprof.sampling.readers.common import (  # noqa: F401 (the package's public names)
    CHANNEL_NAMES, GPUIdentity, PowerChannel, Reader, ReaderEntry, StateReading, make_reader,
    reader_entries, reader_entry, register_reader, unregister_reader, vendor_devices, vendor_status,
)
from kernelprof.sampling.readers.nvidia import NVMLReader  # noqa: F401
