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


def test_suite_counters_split_one_ncu_process_into_exact_per_point_counts():
    """The one-process ncu run over three points: each point's counts are its own (exact FLOPs)."""
    import os
    import shutil

    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    if not shutil.which(os.environ.get("KERNELPROF_NCU") or "ncu"):
        pytest.skip("Nsight Compute (ncu) is not on the PATH")
    pytest.importorskip("cupy")
    from kernelprof.gpu.devices import gpu_facts
    from kernelprof.methods.calibration_counters import suite_counters

    names = ["gemm-bf16-256", "fma-fp32-toggle", "copy-kernel-1gib"]
    counts, notes = suite_counters(names)
    assert set(counts) == set(names), notes
    assert not any("profiled alone" in n for n in notes), notes  # the markers split the one process
    assert counts["gemm-bf16-256"]["tensor_flops[bf16]"] == 2 * 256**3  # tensor counters are exact
    assert "tensor_flops[bf16]" not in counts["fma-fp32-toggle"]
    threads = (gpu_facts(0).sm_count or 132) * 8 * 256
    loop_flops = 2 * 8 * 4096 * threads  # 8 chains x 4096 FFMA per thread, 2 FLOPs each
    # Beyond the loop: the final sum (7 FADD) and the IEEE 1/b1 (a few FFMA) per thread.
    assert loop_flops <= counts["fma-fp32-toggle"]["fma_flops"] <= loop_flops * 1.002
    assert counts["fma-fp32-toggle"]["smem_wavefronts"] == 0
    # read + write; 5%: L2 writes back lazily (metrics.py). The kernel copy: ncu profiles no kernel of
    # copy-1gib's driver memcpy (H100, 2026-12-07), which the counters fit now leaves out.
    assert counts["copy-kernel-1gib"]["dram_bytes"] == pytest.approx(2 * 2**30, rel=0.05)
