"""Shared test set-up.

- Without CUDA (CI), Triton kernels run in the interpreter: TRITON_INTERPRET=1 is set here, before
  any test module imports triton (triton reads it when a kernel is decorated).
- With CUDA, the interpreter stays off unless the caller set it, so `gpu` tests compile for real;
  tests marked `interpreter` (CPU tensors through the interpreter) then skip. To run them on a GPU
  machine: `TRITON_INTERPRET=1 pytest -m interpreter`.
- Tests marked `gpu` skip without CUDA or under the interpreter.
"""
from __future__ import annotations

import os

import pytest

# Keep test runs from writing into the user's real cache.
os.environ.setdefault("KERNELPROF_CACHE", os.path.join(os.path.dirname(__file__), ".cache-test"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


CUDA = _cuda_available()
if "TRITON_INTERPRET" not in os.environ:
    os.environ["TRITON_INTERPRET"] = "0" if CUDA else "1"
INTERPRET = os.environ["TRITON_INTERPRET"] == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "interpreter: runs Triton kernels on CPU tensors under TRITON_INTERPRET=1")


def pytest_collection_modifyitems(config, items):
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU (none visible)" if not CUDA
                              else "gpu tests do not run under TRITON_INTERPRET=1")
    no_interp = pytest.mark.skip(reason="interpreter test: run with TRITON_INTERPRET=1")
    for item in items:
        if "gpu" in item.keywords and (not CUDA or INTERPRET):
            item.add_marker(no_gpu)
        if "interpreter" in item.keywords and not INTERPRET:
            item.add_marker(no_interp)
