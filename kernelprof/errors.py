"""kernelprof's own exceptions: each carries a message that tells the user what to do.

The CLI turns any `KernelprofError` into one line on stderr and its `exit_code`; any other
exception is kernelprof's own bug: one line with a hint to file it, exit 70. Exit statuses:

    0 ok                      1 some points failed (the count is printed)   2 usage / bad input
    3 no CUDA GPU             4 NVML missing or no permission               5 unsupported here
    6 corrupt, old or newer file                7 measurement failed        8 output not writable
    70 internal error (kernelprof's bug)        130 interrupted
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


class OutputError(KernelprofError):
    """An output cannot be written (no such directory, no permission, disk full), or would replace an input."""

    exit_code = 8


class InternalError(KernelprofError):
    """kernelprof's own bug, not the user's input nor the GPU's doing."""

    exit_code = 70


EXIT_OK, EXIT_POINTS_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 70, 130
BUG_HINT = "this is a bug in kernelprof: please file it with the command line and this message"


# Exceptions that mean kernelprof's own code is wrong (not the input, not the GPU): a sweep, compare
# or workload stops on them with exit 70 instead of recording the point as failed.
_BUG_TYPES = (KeyError, TypeError, AttributeError, NameError, IndexError, AssertionError, ZeroDivisionError)


def is_internal_bug(exc: BaseException) -> bool:
    return isinstance(exc, _BUG_TYPES) and not isinstance(exc, KernelprofError)


def points_failed_exit(failed: int, total: int, what: str = "points") -> int:
    """Exit status of a sweep, workload or compare: 1 (with the count on stderr) when any failed."""
    if failed:
        warn(f"{failed} of {total} {what} failed (see the table above)")
        return EXIT_POINTS_FAILED
    return EXIT_OK


def warn(message: str, *, command: str = "kernelprof") -> None:
    """One line on stderr for something the user should know but that does not stop the command."""
    import sys

    print(f"{command}: warning: {message}", file=sys.stderr)


__all__ = ["OutputError", "InternalError", "warn", "BUG_HINT", "KernelprofError", "UsageError", "NoGPUError", "NVMLUnavailableError", "NotSupportedError",
           "RunFileError", "ShapeError", "MeasurementError"]
