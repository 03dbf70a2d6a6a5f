"""The one GPU load the power measurements use: bf16 n x n matmuls in bursts of a requested length.

Used by the sensor characterization (`kernelprof sensor`), `benchmarks/power.py` and the fixture
recorder (`benchmarks/record_power_fixtures.py`): a 4096^3 bf16 matmul runs ~0.2 ms on an H100/H200 and
draws close to the power limit, so bursts of it make clean square waves.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np


class MatmulLoad:
    """C [n, n] = A [n, n] @ B [n, n] in bf16 on CUDA device `device`, timed with CUDA events."""

    def __init__(self, device: int = 0, n: int = 4096, *, warmup: int = 30, timing_reps: int = 100) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.n = n
        self.a = torch.randn(n, n, device=f"cuda:{device}", dtype=torch.bfloat16)
        self.b = torch.randn(n, n, device=f"cuda:{device}", dtype=torch.bfloat16)
        self.c = torch.empty_like(self.a)
        self.run(warmup)  # cuBLAS heuristics and clocks settle before the timing
        torch.cuda.synchronize(device)
        self.ms_per_matmul = self.timed_ms(self.run, timing_reps) / timing_reps

    def run(self, k: int) -> None:
        """Launch `k` matmuls (asynchronous)."""
        for _ in range(k):
            self.torch.matmul(self.a, self.b, out=self.c)

    def n_for_ms(self, ms: float) -> int:
        """Matmuls in a burst of about `ms` of GPU time (at least one)."""
        return max(1, round(ms / self.ms_per_matmul))

    def timed_ms(self, fn: Callable[..., Any], *args: Any) -> float:
        """GPU time in ms of fn(*args), CUDA events around it."""
        torch = self.torch
        with torch.cuda.device(self.device):
            torch.cuda.synchronize()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn(*args)
            e.record()
            e.synchronize()
        return s.elapsed_time(e)

    def busy_for(self, seconds: float) -> None:
        """Back-to-back matmuls; a sync every ~10 ms keeps the host with the GPU, so marks mean "now"."""
        chunk = self.n_for_ms(10.0)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.run(chunk)
            self.torch.cuda.synchronize(self.device)

    def square(self, on_ms: float, off_ms: float | tuple[float, float], seconds: float, *,
               rng: np.random.Generator | None = None, each_burst: Callable[[Callable[[], None]], None] | None = None
               ) -> None:
        """Bursts of `on_ms` of matmuls, each followed by a host sleep of `off_ms` (a (low, high) range
        draws a uniform one per burst from `rng`). `each_burst(run)` wraps each burst, e.g. in a phase."""
        if isinstance(off_ms, tuple) and rng is None:
            raise ValueError("a random off time (low, high) needs rng")
        n = self.n_for_ms(on_ms)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if each_burst is None:
                self.run(n)
            else:
                each_burst(lambda: self.run(n))
            self.torch.cuda.synchronize(self.device)
            off = float(rng.uniform(*off_ms)) if isinstance(off_ms, tuple) else off_ms
            time.sleep(off / 1e3)
