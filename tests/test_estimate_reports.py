"""How `kernelprof kernel`, `compare` and `calibrate` show the estimates (SYNTHETIC numbers: layout only)."""
from __future__ import annotations

import pytest

from kernelprof.cli.output import console
from kernelprof.estimates.energy import ESTIMATE_NAMES, estimate_all
from kernelprof.methods.kernel_energy import KernelEnergy
from kernelprof.estimates.datasheets import datasheet_for

from tests.test_estimates import SHAPES, synthetic_fit

H200 = datasheet_for("NVIDIA H200")


@pytest.fixture(autouse=True)
def wide_console():
    """Wide enough that no cell wraps, so the tests can look for whole phrases."""
    old = console.width
    console.width = 400
    yield
    console.width = old


def _measurement(energy_j: float, time_s: float) -> dict:
    return {"time_per_call_s": time_s, "time_ci_s": time_s / 200, "achieved_flop_s": 7.3e14, "achieved_bytes_s": 2.7e11,
            "mean_power_w": energy_j / time_s, "idle_power_w": 122.0, "idle_kind": "right after work",
            "energy_per_call_j": energy_j, "energy_ci_j": energy_j / 300, "method": "steady_state",
            "source": "nvml_samples", "dynamic_energy_per_call_j": energy_j - 122.0 * time_s,
            "counter_energy_per_call_j": energy_j, "counter_vs_samples_pct": 0.2, "trials": [{}] * 3,
            "calls_per_launch": 1, "input_sets": 1, "wall_s": 4.5, "flags": [], "notes": []}


def _kernel_energy(variant: str, energy_j: float, time_s: float) -> KernelEnergy:
    ests = estimate_all(flops=2 * 8192**3, min_bytes=3 * 2 * 8192**2, dtype="bf16", time_s=time_s, energy_j=energy_j,
                        sheet=H200, model=synthetic_fit(), idle_power_w=122.0, nvml_utilization_pct=99.0)
    return KernelEnergy(op="gemm", variant=variant, shape="8192x8192x8192", dtype="bf16", gpu_name="NVIDIA H200",
                        measurement=_measurement(energy_j, time_s), estimates=tuple(ests), roofline_time_s=1.11e-3,
                        roofline_fraction=0.74, roofline_basis="datasheet peaks", pj_per_flop=0.95, pj_per_byte=None,
                        j_per_tflop=0.95)


def test_kernel_report_shows_every_estimate_and_the_paper_convention():
    from kernelprof.cli.kernel import render_kernel

    ke = KernelEnergy.from_json(_kernel_energy("cublas", 1.04, 1.5e-3).to_json())  # as from a run file
    with console.capture() as cap:
        render_kernel(ke)
    text = cap.get()
    for name in ESTIMATE_NAMES:
        assert name in text
    assert "headline" in text and "NVML GPU utilization 99%" in text


def test_compare_report_shows_measured_over_each_estimate():
    from kernelprof.cli.compare import render_compare
    from kernelprof.methods.compare import compare_all
    from kernelprof.cli.compare import point_of
    from kernelprof.outputs.runfile import to_jsonable

    variants = {"cublas": _kernel_energy("cublas", 1.04, 1.5e-3).to_json(),
                "triton": _kernel_energy("triton", 1.10, 1.6e-3).to_json()}
    comps = compare_all([point_of(k, v) for k, v in variants.items()], baseline="cublas")
    payload = {"op": "gemm", "shape": "8192x8192x8192", "dtype": "bf16", "baseline": "cublas",
               "gpu_name": "NVIDIA H200", "variants": variants, "failed": {},
               "comparisons": [to_jsonable(c) for c in comps]}
    with console.capture() as cap:
        render_compare(payload)
    text = cap.get()
    assert "measured / estimate" in text and "paper (headline peak)" in text
    for name in ("roofline", "utilization", "activity", "calibrated"):
        assert name in text


def test_calibrate_refits_a_saved_results_file_without_a_gpu(tmp_path):
    from kernelprof.outputs.benchfile import write_results
    from kernelprof.cli.main import main

    summaries = [{"name": n, "kind": k, "op": "copy" if n.startswith("copy") else "gemm", "variant": "v", "shape": "",
                  "dtype": d or "fp32", "flops": float(f), "min_bytes": float(b), "time_per_call_s": t,
                  "energy_per_call_j": (122.0 + 400.0) * t + 0.5e-12 * f, "energy_ci_j": None, "idle_power_w": 122.0,
                  "flags": []} for n, k, d, f, b, t in SHAPES]
    path = write_results("calibration", [], device={"name": "NVIDIA H200 (synthetic)"},
                         notes={"measurements": summaries}, results_dir=tmp_path)
    with console.capture() as cap:
        assert main(["calibrate", "--from", str(path)]) == 0
    text = cap.get()
    assert "leave one out" in text and "e_flop_j[bf16]" in text and "worst held-out error" in text
    assert main(["calibrate", "--from", str(tmp_path / "missing.json")]) != 0
