"""kernelprof: what does this GPU kernel cost in time and joules, and why?"""
from __future__ import annotations

__version__ = "0.1.0"

# Heavy parts (torch, the sampler) load on first use, so `import kernelprof` stays light (PEP 562).
_LAZY = {
    "Profiler": "kernelprof.profiler",
    "ProfileResult": "kernelprof.profiler",
    "load_profile": "kernelprof.profiler",
    "PowerSampler": "kernelprof.sampling.runners",
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
