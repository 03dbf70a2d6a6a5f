"""The hostile-input suite: every case of tests/hostile_cases.py through the real CLI, in-process.

Each case asserts its exit status, one error sentence on stderr, no traceback, input files
unchanged and, where the right answer is not an error, what the output must say. Counts before
and after issue 14 are in tests/data/hostile/before.json and after.json (same table).
The hypothesis fuzzing of the parsers and loaders is in tests/test_hostile_fuzz.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_cases import build_fixtures, cases, file_hashes  # noqa: E402
from hostile_runner import run_case  # noqa: E402

from kernelprof.errors import KernelprofError  # noqa: E402


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_fixtures(tmp_path_factory.mktemp("hostile"))


def test_at_least_150_cases(fx):
    assert len(cases(fx)) >= 150


def test_every_hostile_case_is_clean(fx, tmp_path, monkeypatch):
    from kernelprof.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERNELPROF_CACHE", str(tmp_path / "cache"))
    bad = {}
    for c in cases(fx):
        r = run_case(main, c, fx, file_hashes)
        if r["outcome"] != "clean":
            bad[c.name] = r
    assert not bad, "\n".join(f"{k}: {v}" for k, v in list(bad.items())[:20])
