"""The real sampler on a real GPU: sources, periods, busy vs idle, counter agreement, failure paths."""
from __future__ import annotations

import signal
import time

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gemm():
    import torch

    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    c = torch.empty_like(a)

    def busy(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(50):
                torch.matmul(a, b, out=c)
            torch.cuda.synchronize()

    busy(0.2)
    return busy


def _nvml_index(cuda_index: int = 0) -> int:
    from kernelprof.gpu.devices import gpu_facts

    return gpu_facts(cuda_index).nvml_index


def test_nvml_edge_reads_power_in_watts_on_the_epoch_clock():
    from kernelprof.gpu import nvml

    h = nvml.handle(_nvml_index())
    t, w = nvml.power_samples(h, 0)
    now_us = time.time_ns() // 1000
    assert t.dtype == np.int64 and len(t) > 50
    assert abs(int(t[-1]) - now_us) < 5_000_000  # epoch microseconds, not perf_counter
    assert np.all((w > 10) & (w < 2000))  # watts, not mW
    inst, avg = nvml.power_fields_w(h, [nvml.FI_DEV_POWER_INSTANT, nvml.FI_DEV_POWER_AVERAGE])
    assert 10 < avg.value < 2000 and abs(avg.t_us - now_us) < 5_000_000
    assert nvml.energy_counter_j(h) > 0


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_sampler_captures_every_buffered_sample_and_sees_the_load(mode, gemm):
    from kernelprof.sampling.runners import PowerSampler

    with PowerSampler([_nvml_index()], mode=mode) as s:
        time.sleep(1.0)
        t_busy = time.time_ns() // 1000
        gemm(2.0)
        s.mark_counter(precise=True)
    g = s.trace.gpus[0]
    assert g.sources.samples and g.sources.counter
    assert g.lost_samples() == 0, g.gaps
    assert 15.0 < g.sample_period_s() * 1e3 < 25.0
    idle = g.samples_w[(g.samples_t_us > t_busy - 900_000) & (g.samples_t_us < t_busy)]
    busy = g.samples_w[g.samples_t_us > t_busy + 500_000]
    assert np.median(busy) > np.median(idle) + 100
    if g.sources.instant:
        assert 50.0 < np.median(np.diff(g.instant_t_us)) / 1e3 < 200.0
    assert len(g.counter_j) >= 3 and np.all(np.diff(g.counter_j) >= 0)
    assert len(g.state_t_us) > 20 and np.nanmax(g.sm_clock_mhz) > 0


def test_profiler_phases_energy_and_counter_cross_check(gemm):
    from kernelprof.profiler import Profiler

    with Profiler(gpus=[0], counter_marks=True) as prof:
        with prof.phase("idle"):
            time.sleep(1.0)
        with prof.phase("load"):
            gemm(2.5)
    r = prof.result()
    idle, load = r.phase("idle"), r.phase("load")
    assert load.mean_power_w > idle.mean_power_w + 100
    assert load.time_s == pytest.approx(2.5, abs=0.2)
    assert load.method == "nvml_samples"
    assert load.energy_counter_j is not None and abs(load.counter_diff_pct) < 5.0
    assert r.total.counter_diff_pct is not None and abs(r.total.counter_diff_pct) < 5.0
    assert r.lost_samples == 0


def test_profile_saves_and_reloads_without_the_gpu_path(tmp_path, gemm):
    from kernelprof.profiler import Profiler, load_profile

    with Profiler() as prof:
        with prof.phase("load"):
            gemm(1.0)
    path = prof.save(tmp_path / "p.json")
    back = load_profile(path)
    assert back.phase("load").energy_j == pytest.approx(prof.result().phase("load").energy_j, rel=1e-12)


def test_a_killed_sampler_process_fails_the_next_phase(gemm):
    from kernelprof.errors import MeasurementError
    from kernelprof.profiler import Profiler

    with pytest.raises(MeasurementError, match="died"):
        with Profiler(mode="process") as prof:
            with prof.phase("a"):
                gemm(0.2)
            prof._sampler._runner.proc.send_signal(signal.SIGKILL)
            prof._sampler._runner.proc.wait(5)
            with prof.phase("b"):
                gemm(0.2)
