"""benchmarks/energy_verdicts.py's loop (shared with `benchmarks/kernels.py --energy`), on CPU with
compare_variants replaced by a stand-in: the plumbing only (case names, streaming, failures), no
measurement."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import energy_verdicts as ev  # noqa: E402
from kernelprof.errors import UsageError  # noqa: E402
from kernelprof.methods.compare import Comparison  # noqa: E402
from kernelprof.methods.compare_variants import VariantComparison  # noqa: E402


def _fake_compare(op, variants, *, shape, dtype, baseline):
    if op == "attention":
        raise UsageError("out of memory (stand-in)")
    base, *subjects = variants
    comps = tuple(Comparison(base, v, 1.04, 0.01, 1.05, 0.01, 0.99, "wastes energy", "stand-in") for v in subjects)
    runs = {v: {"measurement": {"energy_per_call_j": 0.1 + i}} for i, v in enumerate(variants)}
    return VariantComparison(op, shape, dtype, base, "stand-in", runs, {}, comps)


def test_run_verdicts_names_cases_streams_them_and_keeps_going_past_a_failure(monkeypatch):
    import kernelprof.methods.compare_variants as cv

    monkeypatch.setattr(cv, "compare_variants", _fake_compare)
    seen = []
    wanted = ["gemm-bf16-4096", "attention-s4096", "decode-b16-ctx8192"]
    cases, failures, _ = ev.run_verdicts(wanted, budget_s=1e9, on_cases=lambda c, f, t: seen.append(len(c)))
    assert [c.name for c in cases] == ["gemm-bf16-4096/triton-persistent/energy_ratio",
                                       "gemm-bf16-4096/triton/energy_ratio",
                                       "decode-b16-ctx8192/triton-splitk/energy_ratio"]
    assert cases[0].extra["baseline"] == "cublas" and cases[0].extra["candidate_j_per_call"] == 1.1
    assert "out of memory" in failures["attention-s4096"]
    assert seen == [2, 3]  # written after each finished case; the failed one adds nothing


def test_run_verdicts_starts_nothing_past_its_budget(monkeypatch):
    import kernelprof.methods.compare_variants as cv

    monkeypatch.setattr(cv, "compare_variants", _fake_compare)
    cases, failures, _ = ev.run_verdicts(["gemm-bf16-4096"], budget_s=-1.0)
    assert cases == [] and failures == {"gemm-bf16-4096": "not started: --budget-s reached"}
