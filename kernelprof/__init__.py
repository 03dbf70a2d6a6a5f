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
`profiler.py` is the Python API (`Profiler`), `errors.py` the exceptions, `cache.py` the per-GPU cache,
`validate.py` the argument checks every entry point makes before it needs a GPU.
"""
from __future__ import annotations

__version__ = "0.1.0"

# The public API, by where each name lives. Heavy parts (torch, the sampler) load on first use, so
# `import kernelprof` stays light (PEP 562): `kernelprof --help` must not import torch.
_LAZY = {
    # profile named phases of a workload, and re-read saved profiles without a GPU
    "Profiler": "kernelprof.profiler",
    "ProfileResult": "kernelprof.profiler",
    "PhaseResult": "kernelprof.profiler",
    "load_profile": "kernelprof.profiler",
    "load_profile_run": "kernelprof.profiler",
    # one kernel's joules per call by the steady-state method, and CUDA-event timing
    "measure_kernel": "kernelprof.methods.steady_state",
    "MeasureConfig": "kernelprof.methods.kernel_measurement",
    "KernelMeasurement": "kernelprof.methods.kernel_measurement",
    # variants of one op measured and compared (the library half of `kernelprof compare`)
    "compare_variants": "kernelprof.methods.compare_variants",
    "time_cuda": "kernelprof.timeline.cuda_timing",
    "Timing": "kernelprof.timeline.cuda_timing",
    "rotating_input_sets": "kernelprof.timeline.cuda_timing",
    # power sampling and attribution of joules to intervals
    "PowerSampler": "kernelprof.sampling.runners",
    "phase": "kernelprof.methods.program_nvtx",  # a named phase under `kernelprof run`; elsewhere an NVTX range
    "PowerTrace": "kernelprof.sampling.powertrace",
    "SensorProfile": "kernelprof.attribution.sensor_profile",
    "attribute": "kernelprof.attribution.intervals",
    # another power source or vendor: a Reader subclass behind the registry
    "Reader": "kernelprof.sampling.readers.common",
    "register_reader": "kernelprof.sampling.readers.common",
    # joules per kernel class in each phase of a profile with kernels
    "classes_per_phase": "kernelprof.methods.phase_classes",
    # run files and traces
    "save_run": "kernelprof.outputs.runfile",
    "load_run": "kernelprof.outputs.runfile",
    "write_chrome_trace": "kernelprof.outputs.perfetto",
    # errors
    "KernelprofError": "kernelprof.errors",
    "MeasurementError": "kernelprof.errors",
    "UsageError": "kernelprof.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kernelprof' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
