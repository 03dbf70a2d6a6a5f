"""The marginal-energy arithmetic (kernelprof.methods.llm.marginal.compose), its run file and report, on CPU.

The runs are a real 8B batch-8 optimized record (traces/llm-llama-3.1-8b-b8-optimized.json) with its
phase energies shifted by known amounts: what is tested is the arithmetic and the flags, not a
measurement (the GPU path is `kernelprof llm --class-marginals`)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kernelprof.cli.main import main
from kernelprof.errors import UsageError
from kernelprof.methods.llm.marginal import MarginalResult, compose, measure_class_marginals
from kernelprof.methods.llm.result import LLMResult
from kernelprof.outputs.runfile import save_run

ROOT = Path(__file__).resolve().parent.parent
BASE = LLMResult.from_json(json.loads((ROOT / "traces/llm-llama-3.1-8b-b8-optimized.json").read_text())["payload"]["result"])


def shifted(r: LLMResult, phase: str, extra_j_per_call: float, extra_s_per_call: float = 0.0,
            mhz_factor: float = 1.0) -> LLMResult:
    phases = []
    for p in r.phases:
        if p.name == phase:
            p = dataclasses.replace(p, energy_inrun_j=p.energy_inrun_j + extra_j_per_call * p.calls,
                                    time_s=p.time_s + extra_s_per_call * p.calls,
                                    sm_clock_inrun_mhz=(p.sm_clock_inrun_mhz or 1500.0) * mhz_factor)
        phases.append(p)
    return dataclasses.replace(r, phases=tuple(phases))


def runs():
    dec = BASE.phase("decode")
    j = dec.energy_inrun_j / dec.calls
    return {"baseline-0": BASE, "baseline-1": shifted(BASE, "decode", 0.002 * j),     # baselines 0.2% apart
            "gemm": shifted(BASE, "decode", 0.70 * j, 0.003),
            "attention": shifted(BASE, "decode", 0.0025 * j, mhz_factor=1.05),          # inside 2x the spread
            "pointwise": shifted(BASE, "prefill", 0.10 * BASE.phase("prefill").energy_inrun_j)}, j


def test_marginals_are_the_extra_joules_per_call_over_the_bracketing_baselines():
    rs, j = runs()
    r = compose(rs, ("gemm", "attention", "pointwise"))
    m = {(x.kernel_class, x.phase): x for x in r.marginals}
    base = r.baseline_j_per_call["decode"]
    assert base == pytest.approx(j * 1.001)
    # gemm ran first of three between the baselines: its baseline is a quarter of the way to the second
    assert m["gemm", "decode"].energy_per_call_j == pytest.approx(0.70 * j - 0.25 * 0.002 * j)
    assert m["gemm", "decode"].time_per_call_s == pytest.approx(0.003, rel=1e-6)
    assert m["gemm", "decode"].flags == ()
    assert r.repeat_pct["decode"] == pytest.approx(100 * 0.002 / 1.001, rel=1e-6)
    assert set(m["attention", "decode"].flags) == {"not_resolved", "clock_shift"}
    assert m["pointwise", "decode"].energy_per_call_j == pytest.approx(-0.75 * 0.002 * j)
    un = r.unexplained_j_per_call("decode")
    assert un == pytest.approx(base - sum(x.energy_per_call_j for x in r.marginals if x.phase == "decode"))


def test_the_result_round_trips_and_reports_from_its_run_file(tmp_path, capsys):
    rs, _ = runs()
    r = compose(rs, ("gemm", "attention", "pointwise"))
    again = MarginalResult.from_json(json.loads(json.dumps(r.to_json())))
    assert again.marginals == r.marginals and again.baseline_j_per_call == r.baseline_j_per_call
    path = tmp_path / "m-marginals.json"
    save_run(path, "llm-marginals", {"result": r.to_json()})
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gemm" in out and "not_resolved" in out and "no class" in out


def test_bad_class_lists_are_refused_before_the_gpu():
    with pytest.raises(UsageError, match="classes must be some of"):
        measure_class_marginals("llama-3.1-8b", 8, 512, 128, classes=("copy",))


def test_the_cli_refuses_unknown_classes_and_other_modes():
    assert main(["llm", "--class-marginals", "gemm,foo"]) == 2
    assert main(["llm", "--class-marginals", "--mode", "eager"]) == 2
    assert main(["llm", "--class-marginals", "--kernel-slices"]) == 2
    assert main(["llm", "--class-marginals", " , "]) == 2
