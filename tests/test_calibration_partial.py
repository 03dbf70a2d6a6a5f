"""`kernelprof calibrate --counters` writes the measured energies before ncu starts (CPU; GPU parts stubbed).

The measurements are the shipped H200 calibration run's (benchmarks/results/calibration-h200.json); the
GPU, ncu and the device record are replaced, and ncu "dies" the way a time limit stops it."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kernelprof.gpu.devices import GPUFacts
from kernelprof.methods import calibration_suite as suite

ROOT = Path(__file__).resolve().parent.parent
SAVED = json.loads((ROOT / "benchmarks/results/calibration-h200.json").read_text())


def test_a_run_stopped_inside_ncu_leaves_the_energies_for_calibrate_from(tmp_path, monkeypatch):
    import kernelprof.methods.calibration_counters as cc

    fields = {f.name: None for f in dataclasses.fields(GPUFacts)}
    facts = GPUFacts(**{**fields, "name": "NVIDIA H200", "uuid": "GPU-test", "index": 0, "power_limit_w": 700.0})
    monkeypatch.setattr(suite, "require_gpu", lambda *a: None)
    monkeypatch.setattr(suite, "gpu_facts", lambda *a: facts)
    monkeypatch.setattr(suite, "device_record", lambda *a: SAVED["device"])
    monkeypatch.setattr(suite, "write_cached", lambda *a: None)
    monkeypatch.setattr(suite, "measure_suite", lambda *a, **k: ([dict(m) for m in SAVED["notes"]["measurements"]], []))

    def killed(*a, **k):
        raise KeyboardInterrupt("the step's time limit")
    monkeypatch.setattr(cc, "suite_counters", killed)
    with pytest.raises(KeyboardInterrupt):
        suite.calibrate(counters=True, results_dir=tmp_path)
    written = list(tmp_path.glob("calibration-*.json"))
    assert len(written) == 1
    doc = json.loads(written[0].read_text())
    assert len(doc["notes"]["measurements"]) == len(SAVED["notes"]["measurements"])
    assert "not profiled yet" in doc["notes"]["counter_notes"][0]
    again = suite.refit_results_file(doc)  # what `kernelprof calibrate --from` does
    assert again.fit.to_json()["calibrated"]["coefficients"] == suite.refit_results_file(SAVED).fit.to_json()[
        "calibrated"]["coefficients"]
