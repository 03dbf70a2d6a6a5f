"""kernelprof: what does this GPU kernel cost in time and joules, and why?"""
from __future__ import annotations

__version__ = "0.1.0"
