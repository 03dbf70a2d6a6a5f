"""`kernelprof report` on every shipped recording prints what it printed when the golden files were
captured (issue 13: a layout change must not change any output).

Each recording that `report` accepts has two golden files under tests/data/report_golden/, gzipped:
`<name>.json.gz` (`report --json`) and `<name>.txt.gz` (the tables, rendered 160 columns wide).
To recapture after an intended change of output:

    KERNELPROF_REGEN_GOLDEN=1 python -m pytest tests/test_report_golden.py
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from kernelprof.cli import output
from kernelprof.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "report_golden"
REGEN = os.environ.get("KERNELPROF_REGEN_GOLDEN") == "1"


def shipped_recordings() -> list[Path]:
    """Run files and sweep/workload JSONL that ship; `*.trace.json` are Chrome traces, not runs."""
    found = [*ROOT.glob("traces/*.json"), *ROOT.glob("traces/*.jsonl"), *ROOT.glob("tests/data/*.json")]
    return sorted(p for p in found if not p.name.endswith(".trace.json"))


def golden_name(path: Path) -> str:
    return str(path.relative_to(ROOT)).replace("/", "__")


def report_output(path: Path, as_json: bool, capsys, monkeypatch) -> str:
    monkeypatch.setattr(output.console, "width", 160)
    monkeypatch.setenv("COLUMNS", "160")  # renderers that make their own rich Console read it
    monkeypatch.chdir(ROOT)  # the tables quote the path as given: keep it relative, the same in any checkout
    capsys.readouterr()
    rc = main(["report", *(["--json"] if as_json else []), str(path.relative_to(ROOT))])
    out = capsys.readouterr().out
    assert rc == 0, f"report {path} exited {rc}"
    return out


def test_every_shipped_recording_has_golden_output():
    if REGEN:
        pytest.skip("recapturing")
    missing = [golden_name(p) for p in shipped_recordings()
               if not (GOLDEN / f"{golden_name(p)}.json.gz").exists()]
    assert not missing, f"no golden report output for {missing}; recapture with KERNELPROF_REGEN_GOLDEN=1"


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "tables"])
@pytest.mark.parametrize("path", shipped_recordings(), ids=golden_name)
def test_report_output_unchanged(path: Path, as_json: bool, capsys, monkeypatch):
    out = report_output(path, as_json, capsys, monkeypatch)
    golden = GOLDEN / f"{golden_name(path)}.{'json' if as_json else 'txt'}.gz"
    if REGEN:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(gzip.compress(out.encode("utf-8"), compresslevel=9, mtime=0))
        return
    assert golden.exists(), f"no golden file {golden.name}; recapture with KERNELPROF_REGEN_GOLDEN=1"
    with gzip.open(golden, "rt", encoding="utf-8") as f:
        expected = f.read()
    assert out == expected, f"report of {path.name} changed (first difference at character " \
                            f"{next((i for i, (a, b) in enumerate(zip(out, expected)) if a != b), min(len(out), len(expected)))})"
