"""Sweep streaming, resume after a crash, and failed points (no GPU: the measure function is a fake)."""
from __future__ import annotations

import json

import pytest

from kernelprof.errors import UsageError
from kernelprof.methods.sweep import SweepPoint, SweepSpec, run_sweep
from kernelprof.outputs.jsonl_store import read_store


def read_done(path):
    return read_store(path).records

SPEC = SweepSpec("t", tuple(SweepPoint("gemm", v, s, "bf16") for s in ("64x64x64", "128x128x128", "9999x9999x9999")
                            for v in ("triton", "cublas")))


class OutOfMemoryLike(RuntimeError):
    pass


def fake_measure(calls):
    def measure(p):
        calls.append(p.key)
        if p.shape.startswith("9999"):
            raise OutOfMemoryLike("CUDA out of memory. Tried to allocate 9 GiB")
        return {"energy_j": len(p.shape) * 1e-3}
    return measure


def test_streams_one_line_per_point_and_records_failures(tmp_path):
    out = tmp_path / "s.jsonl"
    calls = []
    recs = run_sweep(SPEC, fake_measure(calls), out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(SPEC.points) == len(recs) == len(calls)
    failed = [r for r in lines if r["status"] == "failed"]
    assert len(failed) == 2 and all(r["error"] == "out of memory" for r in failed)
    assert all(r["result"]["energy_j"] > 0 for r in lines if r["status"] == "ok")


def test_existing_file_needs_resume(tmp_path):
    out = tmp_path / "s.jsonl"
    run_sweep(SPEC, fake_measure([]), out)
    with pytest.raises(UsageError, match="--resume"):
        run_sweep(SPEC, fake_measure([]), out)


def test_resume_after_crash_keeps_finished_points(tmp_path):
    out = tmp_path / "s.jsonl"
    calls = []

    def crashing(p):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies mid-sweep
        return fake_measure(calls)(p)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(SPEC, crashing, out)
    assert len(read_done(out)) == 3
    # A torn half-line from the crash must not lose or corrupt anything.
    with out.open("a") as f:
        f.write('{"key": "gemm/trit')
    again = []
    recs = run_sweep(SPEC, fake_measure(again), out, resume=True)
    assert len(recs) == len(SPEC.points)
    assert not set(again) & {p.key for p in SPEC.points[:3]}, "finished points were measured again"
    assert len(read_done(out)) == len(SPEC.points)


def test_builtin_suites_expand_to_valid_points():
    from kernelprof.methods.sweep import BUILTIN_SUITES, builtin_suite

    for name in BUILTIN_SUITES:
        spec = builtin_suite(name)
        assert spec.points and len({p.key for p in spec.points}) == len(spec.points)


def test_toml_grid_and_unknown_keys(tmp_path):
    from kernelprof.methods.sweep import load_sweep_toml

    good = tmp_path / "g.toml"
    good.write_text('[sweep]\nop = "attention"\nvariants = ["triton"]\n'
                    '[sweep.grid]\nb = [1]\nh = [4]\ns = [17, 129]\nd = [64]\ncausal = [true, false]\n')
    spec = load_sweep_toml(good)
    assert [p.shape for p in spec.points] == ["b=1,h=4,s=17,d=64,causal", "b=1,h=4,s=17,d=64",
                                               "b=1,h=4,s=129,d=64,causal", "b=1,h=4,s=129,d=64"]
    bad = tmp_path / "b.toml"
    bad.write_text('[sweep]\nop = "gemm"\nshapes = ["64x64x64"]\nrepeats = 3\n')
    with pytest.raises(UsageError, match="unknown key"):
        load_sweep_toml(bad)
    bad.write_text('[sweep]\nop = "gemm"\nvariants = ["fastest"]\nshapes = ["64x64x64"]\n')
    with pytest.raises(UsageError, match="unknown variant"):
        load_sweep_toml(bad)
