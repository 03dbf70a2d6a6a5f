"""The resumable JSONL store's rules, each stated in kernelprof/outputs/jsonl_store.py, and the
saved-run sensor-profile policy (a cache never re-attributes a saved run)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernelprof.errors import RunFileError, UsageError
from kernelprof.outputs.jsonl_store import Appender, prepare, read_store

CFG = {"kind": "sweep", "sweep": "t", "op": "gemm"}


def _rec(key, status="ok", **kw):
    return {"v": 2, "key": key, "status": status, "config": CFG, **kw}


def _write(p: Path, recs, tail_newline=True):
    text = "\n".join(json.dumps(r) for r in recs)
    p.write_text(text + ("\n" if tail_newline else ""))


def test_whole_record_without_newline_is_kept_counted_and_repaired(tmp_path):
    p = tmp_path / "s.jsonl"
    _write(p, [_rec("a"), _rec("b")], tail_newline=False)
    r = read_store(p)
    assert set(r.records) == {"a", "b"} and r.lines == 2 and r.torn == "kept"
    with Appender(p, CFG) as a:
        a.append({"key": "c", "status": "ok"})
    again = read_store(p)
    assert set(again.records) == {"a", "b", "c"} and again.torn is None  # b not cut, c on its own line


def test_torn_fragment_is_dropped_reported_and_cut(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps(_rec("a")) + "\n" + '{"key": "b", "sta')
    r = read_store(p)
    assert set(r.records) == {"a"} and r.torn == "dropped" and any("torn" in w for w in r.warnings)
    Appender(p, CFG).close()
    assert p.read_text().count("\n") == 1 and read_store(p).torn is None


def test_ok_beats_a_later_failed_and_last_ok_wins(tmp_path):
    p = tmp_path / "s.jsonl"
    _write(p, [_rec("a", result=1), _rec("a", "failed", error="oom"), _rec("b", result=1), _rec("b", result=2)])
    r = read_store(p)
    assert r.records["a"]["result"] == 1 and r.records["b"]["result"] == 2
    assert any("later failed" in w for w in r.warnings) and any("duplicate key b" in w for w in r.warnings)


@pytest.mark.parametrize("line,match", [('[1]', "not a record"), ('{"v": 99, "key": "a", "status": "ok"}', "newer"),
                                        ('{"version": true, "key": "a", "status": "ok"}', "integer version"),
                                        ('{"v": 1, "key": "a", "status": "maybe"}', "status"),
                                        ('{"v": 1, "status": "ok"}', "key")])
def test_strict_lines_name_their_line(tmp_path, line, match):
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps(_rec("x")) + "\n" + line + "\n" + json.dumps(_rec("y")) + "\n")
    with pytest.raises(RunFileError, match=match) as e:
        read_store(p)
    assert "line 2" in str(e.value)


def test_resume_checks_configuration_and_new_file_moves_aside(tmp_path):
    p = tmp_path / "s.jsonl"
    _write(p, [_rec("a")])
    with pytest.raises(UsageError, match="--resume"):
        prepare(p, CFG, resume=False, new_file=False)
    assert set(prepare(p, CFG, resume=True, new_file=False).records) == {"a"}
    with pytest.raises(UsageError, match="op: 'gemm' in the file vs 'attention' now"):
        prepare(p, {**CFG, "op": "attention"}, resume=True, new_file=False)
    assert prepare(p, {**CFG, "op": "attention"}, resume=True, new_file=True).records == {}
    assert not p.exists() and (tmp_path / "s.old-1.jsonl").exists()


def test_old_file_without_config_is_refused_on_resume(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps({"v": 1, "key": "a", "status": "ok"}) + "\n")
    with pytest.raises(RunFileError, match="no configuration"):
        prepare(p, CFG, resume=True, new_file=False)


def test_internal_bug_in_a_point_stops_the_sweep_unrecorded(tmp_path):
    from kernelprof.errors import InternalError
    from kernelprof.methods.sweep import SweepPoint, SweepSpec, run_sweep

    spec = SweepSpec("t", (SweepPoint("gemm", "cublas", "64x64x64", "bf16"),))
    with pytest.raises(InternalError, match="file it"):
        run_sweep(spec, lambda p: {}["missing"], tmp_path / "s.jsonl")
    assert read_store(tmp_path / "s.jsonl").records == {}


def test_saved_run_without_profile_ignores_this_machines_cache(tmp_path, monkeypatch):
    from kernelprof import cache
    from kernelprof.attribution.intervals import sensor_profile_path
    from kernelprof.outputs.runfile import load_run, save_run
    from kernelprof.profiler import load_profile

    repo = Path(__file__).resolve().parents[1]
    src = load_run(repo / "traces" / "demo-profile.json")
    own = load_profile(repo / "traces" / "demo-profile.json")
    payload = dict(src.payload, sensor_profiles=[])
    p = save_run(tmp_path / "noprof.json", "profile", payload, arrays=src.arrays, environment=src.environment)
    monkeypatch.setenv("KERNELPROF_CACHE", str(tmp_path / "cache"))
    uuid = src.payload["trace"]["gpus"][0]["uuid"]
    bogus = dict(own.sensor_profiles[0].to_json(), samples_lag_s=0.5, source="measured")
    for driver in (src.payload.get("driver"), "x"):
        cache.write_cached(sensor_profile_path(uuid, driver), {"profile": bogus})
    res = load_profile(p)
    assert any("carries no sensor profile" in n for n in res.notes)
    assert all(sp.samples_lag_s != 0.5 for sp in res.sensor_profiles), "the cache re-attributed a saved run"
    assert res.sensor_profiles[0].source != "measured"
