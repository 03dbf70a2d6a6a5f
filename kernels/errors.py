"""The kernels' own exceptions, so that `kernels/` stands alone (it never imports kernelprof).

Each message quotes what was expected and what came. `exit_code` is what a command line built on
these kernels exits with; kernelprof's errors are these classes (`kernelprof.errors` re-exports
`ShapeError` and `NotSupportedError`, and its `KernelprofError` is `KernelError`), so kernelprof's
CLI turns a kernel's error into one sentence and the same exit codes as its own.
"""
from __future__ import annotations


class KernelError(Exception):
    """Base class. `exit_code` is what a CLI exits with."""

    exit_code = 1


class ShapeError(KernelError, ValueError):
    """A tensor has the wrong shape, dtype or device for a kernel."""

    exit_code = 2


class NotSupportedError(KernelError):
    """The GPU or driver lacks a feature (a power source, a dtype, an instruction)."""

    exit_code = 5
