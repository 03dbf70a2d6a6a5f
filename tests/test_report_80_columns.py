"""Every shipped recording reports at 80 columns (the default when piped) with nothing cut off."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = sorted(p for p in (ROOT / "traces").iterdir()
                    if p.suffix in (".json", ".jsonl") and not p.name.endswith(".trace.json"))


def _report(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "kernelprof", "report", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_report_fits_80_columns_without_ellipses(path):
    text = _report(str(path))
    lines = text.splitlines()
    assert lines
    assert not [l for l in lines if "…" in l], "a cell or title was cut off"
    assert not [l for l in lines if len(l) > 80]


def test_repeated_steps_are_summarized_and_expand_with_steps():
    path = str(ROOT / "traces" / "llm-llama-3.1-8b-b8-optimized.profile.json")
    short = _report(path)
    assert "step x1397" in short and "mean, min-max" in short and "--steps" in short
    assert len(short.splitlines()) < 80
    assert len(_report("--steps", path).splitlines()) > 1397  # one row (at least) per step
    # One summary line of flags with their severity.
    assert [l for l in short.splitlines() if l.startswith("flags: ")][0].startswith("flags: 4 warn (short_interval x1397")


def test_report_csv_has_one_row_per_phase_and_json_parses():
    import json

    path = str(ROOT / "traces" / "llm-llama-3.1-8b-b8-optimized.profile.json")
    rows = list(csv.DictReader(io.StringIO(_report("--csv", path))))
    assert len(rows) == 1397 + 22 + 1 and rows[-1]["path"] == "window"
    assert float(rows[0]["energy_j"]) > 0 and rows[0]["flags"] == "sample_gap"
    sweep = list(csv.DictReader(io.StringIO(_report("--csv", str(ROOT / "traces" / "sweep-gemm-h100.jsonl")))))
    assert len(sweep) == len((ROOT / "traces" / "sweep-gemm-h100.jsonl").read_text().splitlines())
    assert json.loads(_report("--json", path))["kind"] == "profile"


def test_flag_severity_summary():
    from kernelprof.cli.output import flags_summary

    assert flags_summary([]) is None
    assert flags_summary(["samples_lost", "throttled", "throttled", "launch_bound"]) == \
        "flags: 1 error (samples_lost x1); 1 warn (throttled x2); 1 info (launch_bound x1)"
