"""The tuners' point logic on CPU (interpreter, fp32, tiny shapes) with a stand-in timer: every
candidate launches, is checked against the reference, and the best correct one is reported. The
timings are fake (fixed 1 ms), so only the bookkeeping is under test here, never a speed."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
pytestmark = pytest.mark.interpreter

from benchmarks.tuning import Timing  # noqa: E402


class FakeTimer:
    def time(self, fn, input_bytes):
        fn()
        return Timing(1.0, 1.0, 1.0, 1, False)


def test_decode_point_runs_every_candidate_and_checks_it():
    from benchmarks.decode_points import measure_point, split_candidates

    lines = []
    rec = measure_point(FakeTimer(), 1, 4, 2, 300, 32, 132, lines.append, dtype=torch.float32, device="cpu",
                        rtol=1e-5)
    triton_rows = [r for r in rec["candidates"] if "config" in r]
    assert len(triton_rows) >= 5
    assert all(r.get("correct") for r in triton_rows), [r for r in triton_rows if not r.get("correct")]
    assert rec["best"] is not None and rec["rule"]["config"]["source"] == "rule"
    assert rec["bucket"] == "hq4-hkv2-d32-b1-ctx256"
    assert {r["backend"] for r in rec["sdpa"]} == {"flash", "efficient", "cudnn"}
    assert split_candidates(16, 32768, 128)[:2] == [1, 16]
    assert all(32768 // s >= 128 for s in split_candidates(256, 32768, 128))
