"""kernelprof: what does this GPU kernel cost in time and joules, and why?

One subpackage per stage of the data flow in DESIGN.md:

    workload --> Profiler (profiler.py) --> timeline/  (intervals on one clock) --+
                     |                                                         +--> attribution/ --> result --> outputs/
                     +--> sampling/ (PowerSampler -> PowerTrace) ---------------+        ^
                                                                                         +-- estimates/
- `gpu/`: NVML and the visible GPUs' facts;      - `sampling/`: power readers, sampler core, runners;
- `timeline/`: clock, CUDA timing, kernel trace; - `attribution/`: joules per interval, phase fit;
- `estimates/`: datasheets, estimate models, utilization, ncu counters;
- `methods/`: steady-state kernels, sweeps, compare, sensor, calibration, ceilings, workloads, LLM;
- `outputs/`: run files, benchmark files, Perfetto, plots; `cli/`: the `kernelprof` command.
`profiler.py` is the Python API (`Profiler`), `errors.py` the exceptions, `cache.py` the per-GPU cache.
"""
from __future__ import annotations

__version__ = "0.1.0"

# Heavy parts (torch, the sampler) load on first use, so `import kernelprof` stays light (PEP 562).
_LAZY = {
    "Profiler": "kernelprof.profiler",
    "ProfileResult": "kernelprof.profiler",
    "load_profile": "kernelprof.profiler",
    "PowerSampler": "kernelprof.sampling.runners",
    "phase": "kernelprof.methods.program_nvtx",  # a named phase under `kernelprof run`; elsewhere an NVTX range
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kernelprof' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
