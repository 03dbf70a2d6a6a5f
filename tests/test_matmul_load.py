"""The one matmul load's burst logic, on CPU: a stand-in for torch counts launches and syncs (the
matmuls themselves need a GPU and run in the GPU tests through the sensor and power paths)."""
from __future__ import annotations

import types

import numpy as np
import pytest

from kernelprof.methods.matmul_load import MatmulLoad


def _load(ms_per_matmul: float) -> tuple[MatmulLoad, dict]:
    calls = {"matmul": 0, "sync": 0}
    torch = types.SimpleNamespace(
        matmul=lambda a, b, out: calls.__setitem__("matmul", calls["matmul"] + 1),
        cuda=types.SimpleNamespace(synchronize=lambda *a: calls.__setitem__("sync", calls["sync"] + 1)))
    load = object.__new__(MatmulLoad)  # skips the GPU set-up: only the scheduling is under test
    load.torch, load.device, load.a = torch, 0, None
    load.b = load.c = None
    load.ms_per_matmul = ms_per_matmul
    return load, calls


def test_burst_length_and_each_burst_wrapper():
    load, calls = _load(0.2)
    assert load.n_for_ms(5.0) == 25 and load.n_for_ms(0.01) == 1
    bursts = []

    def wrap(run):
        before = calls["matmul"]
        run()
        bursts.append(calls["matmul"] - before)

    load.square(5.0, 2.0, 0.05, each_burst=wrap)
    assert bursts and all(b == 25 for b in bursts)
    assert calls["sync"] == len(bursts)  # one sync per burst: the sleep starts when the GPU is idle
    assert 5 <= len(bursts) <= 26  # 50 ms of 2 ms sleeps (plus Python overhead), never zero


def test_random_off_time_needs_a_generator_and_draws_in_range(monkeypatch):
    load, _ = _load(0.2)
    slept = []
    monkeypatch.setattr("kernelprof.methods.matmul_load.time.sleep", lambda s: slept.append(s))
    clock = iter(np.arange(0.0, 1.0, 0.01))
    monkeypatch.setattr("kernelprof.methods.matmul_load.time.perf_counter", lambda: next(clock))
    load.square(5.0, (85.0, 105.0), 0.2, rng=np.random.default_rng(0))
    assert slept and all(0.085 <= s <= 0.105 for s in slept)
    with pytest.raises(ValueError, match="needs rng"):
        load.square(5.0, (85.0, 105.0), 0.2)
