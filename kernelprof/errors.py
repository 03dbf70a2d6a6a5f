"""kernelprof's own exceptions: each carries a message that tells the user what to do.

The CLI turns any `KernelprofError` into one line on stderr and a non-zero exit code; a traceback
means a bug in kernelprof, not bad input.
"""
from __future__ import annotations

# The kernels (kernels/, which must not import kernelprof) raise their own ShapeError and
# NotSupportedError; kernelprof uses those very classes, and its base class is theirs, so an
# `except KernelprofError` catches a kernel's error too and the exit codes stay one table.
from kernels.errors import KernelError, NotSupportedError, ShapeError

KernelprofError = KernelError
"""Base class of every kernelprof error (the kernels' `KernelError`). `exit_code` is what the CLI exits with."""


class UsageError(KernelprofError):
    """Bad values for options or arguments (argparse handles unknown options itself)."""

    exit_code = 2


class NoGPUError(KernelprofError):
    """The command needs a CUDA GPU and none is visible."""

    exit_code = 3


class NVMLUnavailableError(KernelprofError):
    """NVML (libnvidia-ml) cannot be loaded or initialized, or a query is not permitted."""

    exit_code = 4


class RunFileError(KernelprofError):
    """A run or results file is missing, corrupt, of another kind, or of an unsupported version."""

    exit_code = 6


class MeasurementError(KernelprofError):
    """A measurement could not be made (sampler died, no samples in a window)."""

    exit_code = 7


__all__ = ["KernelprofError", "UsageError", "NoGPUError", "NVMLUnavailableError", "NotSupportedError",
           "RunFileError", "ShapeError", "MeasurementError"]
