"""`kernelprof counters --energy` on the shipped H100 sensor recording (no GPU needed)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernelprof.errors import RunFileError
from kernelprof.methods.nvml_crosscheck import from_sensor_run

SENSOR = Path(__file__).resolve().parent.parent / "traces" / "sensor-h100.json"


def test_shipped_recording_has_the_continuous_and_5_95_loads():
    check = from_sensor_run(SENSOR)
    loads = {r.load: r for r in check.rows}
    assert {"continuous", "5/95 ms"} <= set(loads)
    # SENSOR_FACTS: buffered samples agree with the counter within ~3% at every duty cycle.
    assert all(abs(r.samples_vs_counter_pct) < 3.0 for r in check.rows)
    for r in check.rows:
        assert r.spread_pct >= abs(r.samples_vs_counter_pct) - 1e-9


def test_cli_prints_saves_and_reports(tmp_path):
    out = tmp_path / "energy.json"
    r = subprocess.run([sys.executable, "-m", "kernelprof", "counters", "--energy", "--from", str(SENSOR),
                        "--save", str(out), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["energy"]["rows"]
    rep = subprocess.run([sys.executable, "-m", "kernelprof", "report", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert rep.returncode == 0 and "instant field" in rep.stdout


def test_wrong_kind_of_run_is_refused(tmp_path):
    with pytest.raises(RunFileError, match="expected sensor"):
        from_sensor_run(Path(__file__).resolve().parent.parent / "traces" / "compare-attention-h100.json")
