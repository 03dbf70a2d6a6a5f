"""The llm result types: per-method estimates, gaps computed from them, JSON round trips, and the
version-1 run files (flat method x metric keys) that must still load and report as they did."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernelprof.cli import output
from kernelprof.cli.main import main
from kernelprof.methods.llm.binned import BinnedSummary, BinTotals
from kernelprof.methods.llm.cycle import CycleMeasurement, PhaseSummary
from kernelprof.methods.llm.hf_baseline import HFResult
from kernelprof.methods.llm.result import LLMResult, PhaseEnergy, PhaseEstimate, gap_pct
from kernelprof.methods.llm.tp_ranks import RankPhase, RankRecord, TPPhase, TPResult
from kernelprof.outputs.runfile import VERSION, load_run, save_run

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "traces"
# Shipped version-1 llm runs: b8-optimized has every method (cycled, per call, clocks), b1 only the
# in-run fit and the looped-alone steady state.
V1_FULL = TRACES / "llm-llama-3.1-8b-b8-optimized.json"
V1_STEADY_ONLY = TRACES / "llm-llama-3.1-8b-b1-optimized.json"
# Version-1 key -> (method, reference, per call) of the gap that replaces it.
V1_GAPS = {"gap_pct": ("inrun", "steady", False), "gap_fit_pct": ("inrun_fit", "steady", False),
           "gap_per_call_pct": ("inrun", "steady", True), "gap_fit_per_call_pct": ("inrun_fit", "steady", True),
           "gap_cycle_pct": ("inrun", "cycle", False), "gap_cycle_fit_pct": ("inrun_fit", "cycle_fit", False)}


def roundtrip(obj):
    """to_json -> JSON text -> from_json, as a run file does."""
    return type(obj).from_json(json.loads(json.dumps(obj.to_json(), allow_nan=False)))


def v1_result(path: Path) -> dict:
    run = load_run(path, kind="llm")
    assert run.version == 1 and "estimates" not in run.payload["result"]["phases"][0]
    return run.payload["result"]


def new_phase() -> PhaseEnergy:
    est = {"inrun_fit": PhaseEstimate("inrun_fit", 640.0, 64.5, 3.0, 0.0645),
           "steady": PhaseEstimate("steady", 655.0, 65.5, energy_per_call_j=0.066, time_per_call_s=0.101,
                                   sm_clock_mhz=1755.0),
           "cycle": PhaseEstimate("cycle", 645.0, 64.5, energy_per_call_j=0.0644, time_per_call_s=0.1,
                                  sm_clock_mhz=1980.0),
           "cycle_fit": PhaseEstimate("cycle_fit", 646.0, 64.6, 2.5, 0.0645, 0.1, 1980.0)}
    return PhaseEnergy("prefill", 0.1, 1000, 8192, 1.3e14, 64.0, 640.0, 30.0, ("short_interval",), 1900.0, est)


def test_new_records_round_trip_through_json():
    p = new_phase()
    assert roundtrip(p.estimates["steady"]) == p.estimates["steady"]
    assert roundtrip(p) == p
    r = LLMResult("llama-3.1-8b", "optimized", "cublas", 8, 512, 128, 5, "NVIDIA H100 80GB HBM3", (p,), 70.0, 0.11,
                  69.0, 1.4, 1.6, 2.1, ("x",), ("a note",), 12.5, "headline")
    back = roundtrip(r)
    assert back == r and back.phases[0].estimates["cycle_fit"].power_se_w == 2.5
    assert "gap_pct" not in json.dumps(r.to_json())  # gaps are computed, never stored


def test_gap_pct_compares_any_two_methods():
    p = new_phase()
    assert gap_pct(p, "inrun", "steady") == pytest.approx(100 * (64.0 - 65.5) / 65.5)
    assert gap_pct(p, "inrun_fit", "cycle_fit") == pytest.approx(100 * (64.5 - 64.6) / 64.6)
    assert gap_pct(p, "inrun", "steady", per_call=True) == pytest.approx(100 * (0.064 - 0.066) / 0.066)
    assert gap_pct(p, "inrun", "nothing") is None
    assert p.busy_fraction == pytest.approx(1000 * 0.101 / 0.1)


@pytest.mark.parametrize("path", [V1_FULL, V1_STEADY_ONLY], ids=lambda p: p.name)
def test_version1_run_files_load_into_estimates(path):
    raw = v1_result(path)
    r = LLMResult.from_json(raw)
    assert r.paper_peak_convention == "dense"  # version-1 files without the key used the dense peak
    for p, d in zip(r.phases, raw["phases"], strict=True):
        assert p.calls == (r.requests if p.name == "prefill" else r.requests * (r.output_len - 1))
        # Every stored gap, recomputed from the mapped records, bit for bit.
        for key, (method, reference, per_call) in V1_GAPS.items():
            if key in d:
                assert gap_pct(p, method, reference, per_call=per_call) == d[key], key
        assert p.busy_fraction == d["busy_fraction"]
        assert p.j_per_token_inrun == d["j_per_token_inrun"]
        assert p.estimate("inrun_fit").power_w == d["power_fit_w"]
        assert p.estimate("steady").power_w == d["steady_power_w"]
        if "energy_cycle_j" in d:  # the writer's "cycled" energy: the fit's where there was one
            assert p.estimate("cycle_fit").energy_j == d["energy_cycle_j"]
            assert p.estimate("cycle").sm_clock_mhz == d["sm_clock_cycle_mhz"]
            assert p.estimate("steady").sm_clock_mhz == d["sm_clock_steady_mhz"]
        else:
            assert "cycle" not in p.estimates and "cycle_fit" not in p.estimates
        assert roundtrip(p) == p
    assert roundtrip(r) == r


def _report(path: Path, capsys, monkeypatch) -> str:
    monkeypatch.setattr(output.console, "width", 160)
    capsys.readouterr()
    assert main(["report", str(path)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", [V1_FULL, V1_STEADY_ONLY], ids=lambda p: p.name)
def test_a_version2_rewrite_reports_as_the_version1_file(path, tmp_path, capsys, monkeypatch):
    old = load_run(path, kind="llm")
    r = LLMResult.from_json(old.payload["result"])
    new = save_run(tmp_path / path.name, "llm", {"result": r.to_json(), "profile": old.payload["profile"]},
                   environment=old.environment)
    back = load_run(new, kind="llm")
    assert back.version == VERSION == 2 and "estimates" in back.payload["result"]["phases"][0]
    assert LLMResult.from_json(back.payload["result"]) == r
    assert _report(new, capsys, monkeypatch) == _report(path, capsys, monkeypatch)


def test_the_other_llm_result_types_round_trip():
    s = PhaseSummary("decode", 635, 2.5, 2.5 / 635, 1300.0, 520.0, 1290.0, 516.0, 1.5, 1755.0, 25, ("x",))
    c = CycleMeasurement(5, 127, 576, (s, PhaseSummary("prefill", 5, 0.1, 0.02, None, None, None, None, None,
                                                         None, 0)), 9.5, ("n",))
    assert roundtrip(s) == s and roundtrip(c) == c
    summary = load_run(TRACES / "workload-azure-conv-llama-3.1-8b.json", kind="workload").payload["summary"]
    b = BinnedSummary.from_json(summary)
    assert b.bins_measured == summary["bins_measured"] and b.paper_peak_convention == "dense"
    assert roundtrip(b) == b
    t = BinTotals(1.0, None, 3.0, 7)
    assert roundtrip(t) == t
    h = HFResult("llama-3.1-8b", 8, 512, 128, 3, 0.1, 60.0, 4.0, 2400.0, 300.0, "4.46.0", "eager", ("f",), 30.0)
    assert roundtrip(h) == h
    rp = RankPhase("prefill", 0.1, 50.0, 500.0, 123, {"gemm": 0.05})
    tp = TPPhase("prefill", 0.1, (50.0, None), None, 0.2, 0.1)
    assert roundtrip(rp) == rp and roundtrip(tp) == tp
    rec = RankRecord(0, 2, "h", 0, "GPU-1", "H100", 0, (rp,), 55.0, None, ("y",))
    res = TPResult("llama-3.1-8b", "optimized", 2, 8, 512, 128, 3, (rec,), (tp,), 1.0, 100.0, ("z",))
    assert roundtrip(rec) == rec and roundtrip(res) == res


@pytest.mark.parametrize("steady_time_per_call_s", [0.0004, 0.0001], ids=["busy", "host_bound"])
def test_compose_phase_gives_the_version1_formulas(steady_time_per_call_s):
    """The composition of a phase, against the formulas `run_llm` stored as flat fields in version 1."""
    pytest.importorskip("torch")
    from types import SimpleNamespace

    from kernelprof.estimates.datasheets import datasheet_for
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.generate import GenerateShape
    from kernelprof.methods.llm.run import _compose_phase, _References, _Setup

    requests, calls, t, e, ef = 5, 5 * 127, 0.25, 130.0, 128.0
    s = PhaseSummary("decode", calls, t, t / calls, e, e / t, ef, 512.0, 1.5, 1700.0, 20, ("short_interval",))
    sw, st = 540.0, steady_time_per_call_s
    cp = PhaseSummary("decode", 3 * 127, 0.15, 0.15 / 381, 79.0, 526.0, 78.5, 523.0, 2.0, 1980.0, 12)
    refs = _References({"decode": SimpleNamespace(mean_power_w=sw, time_per_call_s=st, sm_clock_mhz=1755.0)},
                       CycleMeasurement(3, 127, 576, (cp,), 1.0))
    setup = _Setup(get_config("llama-3.1-8b"), GenerateShape(8, 512, 128), "optimized", None, None, None, None, 0)
    notes: list[str] = []
    p = _compose_phase(s, setup, requests, refs, datasheet_for("NVIDIA H100 80GB HBM3"), notes)

    def pct(x, ref):
        return 100.0 * (x - ref) / ref

    es, e_call, c_int, c_fit = sw * t, sw * st, cp.power_w * t, cp.power_fit_w * t
    assert p.estimate("steady").energy_j == es and p.estimate("steady").energy_per_call_j == e_call
    assert gap_pct(p, "inrun", "steady") == pct(e, es)
    assert gap_pct(p, "inrun_fit", "steady") == pct(ef, es)
    assert gap_pct(p, "inrun", "steady", per_call=True) == pct(e / calls, e_call)
    assert gap_pct(p, "inrun_fit", "steady", per_call=True) == pct(ef / calls, e_call)
    assert gap_pct(p, "inrun", "cycle") == pct(e, c_int)
    assert gap_pct(p, "inrun_fit", "cycle_fit") == pct(ef, c_fit)
    assert p.busy_fraction == calls * st / t
    assert p.mean_power_inrun_w == e / t and p.tokens == requests * 8 * 127
    host_bound = calls * st / t < 0.9
    assert ("host_bound" in p.flags) == host_bound and len(notes) == int(host_bound)
    assert roundtrip(p) == p


def fake_gpu(monkeypatch, run_mod) -> list[str]:
    """Let `run_mod.run_llm` run without a GPU: the Profiler replaced by a recorded H100 run
    (Llama-3.1-8B shape, batch 1, 9 requests), the looped and cycled references by fixed readings.
    Returns the list the fakes log their calls to."""
    import torch
    from contextlib import contextmanager, nullcontext
    from types import SimpleNamespace

    import kernelprof.gpu.devices as devices
    import kernelprof.methods.llm.cycle as cycle
    import kernelprof.methods.steady_state as steady_state
    import kernelprof.profiler as profiler
    from kernelprof.profiler import load_profile, load_profile_inputs

    data = ROOT / "tests" / "data" / "llm_8b_b1_h100.json"
    trace, timeline, window, profiles, _ = load_profile_inputs(data)
    recorded = load_profile(data)
    calls: list[str] = []

    class FakeProfiler:
        def __init__(self, **kw):
            self.trace, self.timeline, self.window, self.sensor_profiles = trace, timeline, window, profiles

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def result(self):
            return recorded

        def save(self, path, extra):
            calls.append(f"save {extra['llm']['requests']}")

        @contextmanager
        def phase(self, name):
            yield

    class FakeGraph:
        def __init__(self, *a, **kw):
            calls.append(f"graph {a[1:]}")

        def reset(self, tok):
            pass

        def replay(self):
            pass

    def measured(fn, *, name, **kw):
        calls.append(f"loop {name}")
        return SimpleNamespace(mean_power_w=600.0 if name == "prefill" else 500.0, time_per_call_s=0.02,
                               sm_clock_mhz=1755.0)

    def fake_cycle(prefill, step, steps, cycles, **kw):
        calls.append(f"cycle {cycles}x{steps}")
        ph = (PhaseSummary("prefill", cycles, 0.2, 0.2 / cycles, 130.0, 650.0, 129.0, 645.0, 3.0, 1900.0, 2),
              PhaseSummary("decode", cycles * steps, 10.0, 10.0 / (cycles * steps), 5000.0, 500.0, 4990.0, 499.0,
                           1.0, 1980.0, 100))
        return CycleMeasurement(cycles, steps, kw["decode_context"], ph, 11.0, ("cycle note",))

    monkeypatch.setattr(torch.cuda, "device", lambda d: nullcontext())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(devices, "require_gpu", lambda what: None)
    monkeypatch.setattr(devices, "gpu_facts", lambda d: SimpleNamespace(name="NVIDIA H100 80GB HBM3"))
    monkeypatch.setattr(run_mod, "check_fits", lambda *a: None)
    monkeypatch.setattr(run_mod, "build_model", lambda *a, **kw: SimpleNamespace(device="cpu", prefill=lambda p: None))
    monkeypatch.setattr(run_mod, "random_prompt", lambda *a, **kw: None)
    monkeypatch.setattr(run_mod, "use_prefill_graph", lambda shape, mode: False)
    monkeypatch.setattr(run_mod, "DecodeGraph", FakeGraph)
    monkeypatch.setattr(run_mod, "generate", lambda *a, prof=None, **kw: calls.append("generate"))
    monkeypatch.setattr(profiler, "Profiler", FakeProfiler)
    monkeypatch.setattr(steady_state, "measure_kernel", measured)
    monkeypatch.setattr(cycle, "measure_cycle", fake_cycle)
    return calls


def test_run_llm_flow_on_a_recorded_run(monkeypatch):
    """run_llm's steps in order, and what they compose, on the recorded run of `fake_gpu`."""
    pytest.importorskip("torch")
    from kernelprof.methods.llm import run as run_mod

    calls = fake_gpu(monkeypatch, run_mod)
    r = run_mod.run_llm("llama-3.1-8b", 1, 512, 128, min_inrun_s=1e3, max_requests=9, profile_path="x.profile.json")
    assert calls == ["graph (512, 127)", "generate", "generate", *["generate"] * 9, "save 9", "loop prefill",
                     "graph (575, 1)", "loop decode-step", "cycle 9x127"]
    assert r.requests == 9 and [p.name for p in r.phases] == ["prefill", "decode"]
    for p in r.phases:
        assert set(p.estimates) == {"inrun_fit", "steady", "cycle", "cycle_fit"}
        assert p.estimate("steady").energy_j == p.estimate("steady").power_w * p.time_s
        assert gap_pct(p, "inrun", "cycle") is not None
    assert r.phase("decode").calls == 9 * 127
    assert "steady decode measured at context 576 (the middle of the decode range)" in r.notes
    assert "cycled: cycle note" in r.notes
    assert roundtrip(r) == r
