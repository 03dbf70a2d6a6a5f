"""`kernels/` stands alone: it imports no kernelprof module, and its errors are kernelprof's (issue 13)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_kernels_import_without_kernelprof():
    # Every module of kernels/, imported in a fresh interpreter: none may pull in kernelprof.
    code = ("import importlib, pkgutil, sys, kernels\n"
            "for m in pkgutil.walk_packages(kernels.__path__, 'kernels.'):\n"
            "    importlib.import_module(m.name)\n"
            "kernels.get_op('gemm')\n"
            "print([m for m in sys.modules if m == 'kernelprof' or m.startswith('kernelprof.')])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_kernel_errors_are_kernelprof_errors():
    import kernels.errors as kernel_errors
    from kernelprof import errors

    assert errors.ShapeError is kernel_errors.ShapeError and errors.NotSupportedError is kernel_errors.NotSupportedError
    assert issubclass(kernel_errors.ShapeError, errors.KernelprofError)
    assert (errors.ShapeError.exit_code, errors.NotSupportedError.exit_code) == (2, 5)


def test_a_kernel_error_is_one_sentence_and_its_exit_code_on_the_cli():
    # The registry (kernels/) raises the ShapeError for an unknown op; the CLI prints it as one line.
    r = subprocess.run([sys.executable, "-m", "kernelprof", "counters", "nosuchop"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "kernelprof counters: error: unknown op 'nosuchop'; valid ops: gemm, attention, decode"
