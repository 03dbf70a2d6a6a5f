"""The calibration suite on a real GPU: a reduced run measures, fits and validates (GPU only)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu


def test_reduced_calibration_measures_fits_and_validates(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from kernelprof.methods.calibration_suite import calibrate

    monkeypatch.setenv("KERNELPROF_CACHE", str(tmp_path / "cache"))
    names = ("copy-1gib", "gemm-bf16-2048", "gemm-bf16-8192", "gemm-bf16-256", "decode-b16-ctx8192")
    run = calibrate(only=names, max_wall_s=4.5, results_dir=tmp_path)
    assert {m["name"] for m in run.measurements} == set(names), run.fit.skipped
    assert len(run.fit.leave_one_out) == len(names)
    assert run.fit.calibrated.coefficients["busy_power_w"] >= 0
    assert run.results_path and (tmp_path / "cache").exists()
