"""CPU tests of the foundation: datasheet lookup, run files, results files, timing summary, CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kernelprof.outputs.benchfile import Case, gpu_slug, write_results
from kernelprof.errors import RunFileError
from kernelprof.outputs.runfile import VERSION, arrays_path, load_run, save_run
from kernelprof.estimates.datasheets import DATASHEETS, datasheet_for, normalize_dtype
from kernelprof.timeline.cuda_timing import summarize

ENV = {"gpus": [], "versions": {}}


@pytest.mark.parametrize("name, model", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM5 80GB"),
    ("NVIDIA H100 PCIe", "H100 PCIe 80GB"),
    ("NVIDIA H100 NVL", "H100 NVL 94GB"),
    ("NVIDIA H200", "H200 SXM 141GB"),
    ("NVIDIA H200 NVL", "H200 NVL 141GB"),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM4 80GB"),
    ("NVIDIA A100-SXM4-40GB", "A100 SXM4 40GB"),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"),
    ("NVIDIA A100-PCIE-40GB", "A100 PCIe 40GB"),
    ("NVIDIA L40S", "L40S"),
    ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
    ("NVIDIA RTX A6000", "RTX A6000"),
])
def test_datasheet_matches_nvml_names(name, model):
    assert datasheet_for(name).model == model


def test_unknown_gpu_has_no_datasheet_entry():
    assert datasheet_for("NVIDIA GeForce GTX 1080") is None


def test_datasheet_peaks_are_dense_and_ordered():
    for sheet in DATASHEETS:
        # Dense tensor rates double from tf32 to bf16 to fp8 on every listed GPU.
        assert math.isclose(sheet.bf16_flop_s / sheet.tf32_flop_s, 2.0, rel_tol=0.02), sheet.model
        if sheet.fp8_flop_s:
            assert math.isclose(sheet.fp8_flop_s / sheet.bf16_flop_s, 2.0, rel_tol=0.02), sheet.model
        assert sheet.source and sheet.tdp_w > 0 and sheet.memory_bandwidth_bytes_s > 1e11
    h100 = datasheet_for("NVIDIA H100 80GB HBM3")
    assert h100.peak_flop_s("torch.bfloat16") == pytest.approx(989.4e12)
    assert h100.tdp_w == 700


def test_normalize_dtype_rejects_unknown():
    assert normalize_dtype("torch.float8_e4m3fn") == "fp8"
    with pytest.raises(ValueError, match="unknown dtype"):
        normalize_dtype("int4")


def test_run_file_round_trip_with_arrays(tmp_path):
    t = np.arange(5, dtype=np.int64) * 20_000
    w = np.array([125.0, 700.5, np.nan, 300.0, 128.25])
    path = save_run(tmp_path / "r.json", "profile", {"energy_j": 1.5, "nan": float("nan")},
                    arrays={"t_us": t, "power_w": w}, environment=ENV)
    run = load_run(path, kind="profile")
    assert run.version == VERSION and run.kind == "profile"
    assert run.payload == {"energy_j": 1.5, "nan": None}  # non-finite floats become null
    np.testing.assert_array_equal(run.arrays["t_us"], t)
    np.testing.assert_array_equal(run.arrays["power_w"], w)


def test_run_file_errors(tmp_path):
    with pytest.raises(RunFileError, match="no run file"):
        load_run(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "kernelprof-run", "version": 1, "kind"')
    with pytest.raises(RunFileError, match="not valid JSON"):
        load_run(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(RunFileError, match="not a kernelprof run file"):
        load_run(other)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format": "kernelprof-run", "version": VERSION + 1, "kind": "x",
                                 "payload": {}, "environment": {}}))
    with pytest.raises(RunFileError, match="newer than this kernelprof reads"):
        load_run(newer)
    path = save_run(tmp_path / "k.json", "kernel", {}, environment=ENV)
    with pytest.raises(RunFileError, match="expected sweep"):
        load_run(path, kind="sweep")


def test_run_file_detects_corrupt_or_missing_arrays(tmp_path):
    path = save_run(tmp_path / "r.json", "profile", {}, arrays={"x": np.ones(10)}, environment=ENV)
    side = arrays_path(path)
    side.write_bytes(side.read_bytes()[:-7])
    with pytest.raises(RunFileError, match="checksum"):
        load_run(path)
    side.unlink()
    with pytest.raises(RunFileError, match="missing"):
        load_run(path)


def test_results_file_ratio_direction(tmp_path):
    faster = Case("t", "ms", value=1.0, baseline="ref", baseline_value=1.1)
    assert faster.ratio == pytest.approx(1.1)  # lower is better: baseline / value
    rate = Case("g", "tflops", value=700.0, baseline="cublas", baseline_value=714.0)
    assert rate.ratio == pytest.approx(700 / 714)
    path = write_results("unit", [faster, rate, Case("x", "tb_s", 2.9)],
                         device={"name": "NVIDIA H100 80GB HBM3"}, results_dir=tmp_path)
    assert path.name == "unit-h100.json"
    doc = json.loads(path.read_text())
    assert {"benchmark", "created", "git_revision", "device", "versions", "cases"} <= set(doc)
    assert "ratio" not in doc["cases"][2]


def test_gpu_slug():
    assert gpu_slug("NVIDIA H100 80GB HBM3") == "h100"
    assert gpu_slug("NVIDIA H200") == "h200"
    assert gpu_slug("NVIDIA A100-SXM4-80GB") == "a100"
    assert gpu_slug("NVIDIA L40S") == "l40s"


def test_timing_summary_quantiles():
    t = summarize([1.0, 2.0, 3.0, 4.0, 5.0], warmup_reps=3, graph_calls=1, cache="flush")
    assert (t.median_ms, t.min_ms, t.max_ms, t.reps) == (3.0, 1.0, 5.0, 5)
    assert t.p20_ms == pytest.approx(1.8) and t.p80_ms == pytest.approx(4.2)
    with pytest.raises(ValueError):
        summarize([], warmup_reps=0, graph_calls=1, cache="none")
