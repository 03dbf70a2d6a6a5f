"""The top-level API: every name in kernelprof.__all__ imports, is documented, and costs no torch import."""
from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import kernelprof

ROOT = Path(__file__).resolve().parent.parent


def test_all_names_resolve_and_every_public_method_has_a_docstring():
    missing = []
    for name in kernelprof.__all__[1:]:
        obj = getattr(kernelprof, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, f in vars(obj).items():
                if attr.startswith("_"):
                    continue
                fn = f.__func__ if isinstance(f, (classmethod, staticmethod)) else (
                    f.fget if isinstance(f, property) else f)
                if callable(fn) and not (fn.__doc__ or "").strip():
                    missing.append(f"{name}.{attr}")
    assert not missing, f"public names without a docstring: {missing}"
    assert {"Profiler", "measure_kernel", "load_profile", "time_cuda"} <= set(kernelprof.__all__)


def test_import_and_top_level_names_do_not_import_torch():
    code = ("import sys, kernelprof; from kernelprof import measure_kernel, Profiler, load_profile; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip() == "False"


def test_py_typed_ships_with_the_package():
    assert (ROOT / "kernelprof" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


def test_measure_kernel_old_bytes_name_warns_and_is_min_bytes():
    from kernelprof.errors import NoGPUError, UsageError

    with pytest.warns(DeprecationWarning, match="min_bytes"):
        with pytest.raises((NoGPUError, UsageError, kernelprof.KernelprofError)):
            kernelprof.measure_kernel(lambda: None, flops=1.0, bytes=8.0)  # no GPU here: warns, then refuses
    with pytest.raises(UsageError, match="not both"):
        with pytest.warns(DeprecationWarning):
            kernelprof.measure_kernel(lambda: None, flops=1.0, bytes=8.0, min_bytes=8.0)


def test_rotating_input_sets_covers_4x_l2_for_a_256_kb_input():
    torch = pytest.importorskip("torch")
    l2 = 60 * 2**20  # an H200's 60 MB L2 (H100: 50 MB)
    x = torch.zeros(64 * 1024)  # 256 KiB of fp32
    sets = kernelprof.rotating_input_sets((x,), min_total_bytes=4 * l2)
    assert len(sets) * x.numel() * 4 >= 4 * l2  # the old cap of 64 copies gave 16 MiB
    assert sets[0][0] is x and sets[1][0] is not x
