"""kernelprof's own exceptions: each carries a message that tells the user what to do.

The CLI turns any `KernelprofError` into one line on stderr and a non-zero exit code; a traceback
means a bug in kernelprof, not bad input.
"""
from __future__ import annotations


class KernelprofError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(KernelprofError):
    """Bad values for options or arguments (argparse handles unknown options itself)."""

    exit_code = 2


class NoGPUError(KernelprofError):
    """The command needs a CUDA GPU and none is visible."""

    exit_code = 3


class NVMLUnavailableError(KernelprofError):
    """NVML (libnvidia-ml) cannot be loaded or initialized, or a query is not permitted."""

    exit_code = 4


class NotSupportedError(KernelprofError):
    """The GPU or driver lacks a feature (a power source, a dtype, an instruction)."""

    exit_code = 5


class RunFileError(KernelprofError):
    """A run or results file is missing, corrupt, of another kind, or of an unsupported version."""

    exit_code = 6


class ShapeError(KernelprofError, ValueError):
    """A tensor has the wrong shape, dtype or device for a kernel."""

    exit_code = 2


class MeasurementError(KernelprofError):
    """A measurement could not be made (sampler died, no samples in a window)."""

    exit_code = 7
