"""Sampler logic on CPU: a ReplayReader serves a (synthetic or recorded) trace as NVML would."""
from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import numpy as np
import pytest

from kernelprof.gpu import nvml
from kernelprof.errors import MeasurementError, NVMLUnavailableError
from kernelprof.sampling.powertrace import PowerTrace, Sources
from kernelprof.sampling.replay import ReplayReader, synthetic_trace
from kernelprof.sampling.core import SamplerConfig, SamplerCore, count_other_processes
from kernelprof.sampling.runners import PowerSampler

T0_US = 1_764_000_000_000_000


def _trace(duration_s=6.0, **kw):
    return synthetic_trace(lambda t: 200.0 + 100.0 * np.sin(t), start_t_us=T0_US, duration_s=duration_s,
                           jitter_s=0.002, **kw)


class Clock:
    def __init__(self, t_us: int) -> None:
        self.t_us = t_us

    def __call__(self) -> int:
        return self.t_us


def _run_core(trace, step_us, until_us, config=None, clock_start=T0_US):
    clock = Clock(clock_start)
    core = SamplerCore(ReplayReader(trace, clock=clock), [0], config or SamplerConfig())
    core.begin()
    while clock.t_us < until_us:
        clock.t_us = min(clock.t_us + step_us, until_us)
        if core.seconds_until_due(clock.t_us) == 0:
            core.tick(clock.t_us)
    return core.finish()


def test_on_time_drains_lose_nothing_and_keep_the_history():
    tr = _trace()
    out = _run_core(tr, 5_000, T0_US + 6_000_000)
    src, got = tr.gpus[0], out.gpus[0]
    # everything from the buffer's history (119 samples before start) to the end, each once
    expected = src.samples_t_us[(src.samples_t_us <= T0_US + 6_000_000)][-len(got.samples_t_us):]
    assert np.array_equal(got.samples_t_us, expected)
    assert np.all(np.diff(got.samples_t_us) > 0)
    assert got.samples_t_us[0] < T0_US - 2_000_000  # history before start
    assert not [g for g in got.gaps if g.kind == "drain_late"]
    assert got.lost_samples() == 0
    assert got.drains == pytest.approx(6.0 / 0.25, abs=2)
    assert got.max_drain_interval_s <= 0.26


def test_fields_keep_only_new_timestamps():
    out = _run_core(_trace(), 5_000, T0_US + 3_000_000)
    g = out.gpus[0]
    assert len(np.unique(g.instant_t_us)) == len(g.instant_t_us)
    assert len(g.instant_t_us) == pytest.approx(31, abs=1)  # 100 ms updates over 3 s (+ the one at start)


def test_a_late_drain_is_a_drain_late_gap_with_the_lost_count():
    tr = _trace()
    cfg = SamplerConfig(drain_interval_s=4.0)  # far beyond the ~2.4 s buffer
    out = _run_core(tr, 10_000, T0_US + 4_500_000, cfg)
    late = [g for g in out.gpus[0].gaps if g.kind == "drain_late"]
    assert late, out.gpus[0].gaps
    # 4 s between drains, the buffer keeps 119 x 20 ms: about 81 samples lost
    assert out.gpus[0].lost_samples() == pytest.approx(4.0 / 0.02 - 119, abs=6)


def test_a_sensor_skip_inside_a_timely_drain_is_a_sensor_gap():
    tr = _trace()
    g = tr.gpus[0]
    keep = ~((g.samples_t_us > T0_US + 1_000_000) & (g.samples_t_us < T0_US + 1_100_000))
    tr2 = PowerTrace(tr.mode, tr.start_t_us, tr.stop_t_us, tr.own_pid,
                     (type(g)(**{**g.__dict__, "samples_t_us": g.samples_t_us[keep], "samples_w": g.samples_w[keep]}),),
                     provenance="synthetic")
    out = _run_core(tr2, 5_000, T0_US + 2_000_000)
    kinds = [x.kind for x in out.gpus[0].gaps if x.source == "samples"]
    assert kinds == ["sensor_gap"]
    assert out.gpus[0].lost_samples() == 0


def test_a_stalled_source_is_reported():
    # Buffered samples carry the sensor's own timestamps, so a source that stops is seen by time.
    # (Fields are not checked: their NVML timestamp is the query time; see SamplerCore._fields_all.)
    tr = _trace(duration_s=4.0)
    g = tr.gpus[0]
    keep = g.samples_t_us < T0_US + 1_000_000  # buffered samples stop after 1 s
    tr2 = PowerTrace(tr.mode, tr.start_t_us, tr.stop_t_us, tr.own_pid,
                     (type(g)(**{**g.__dict__, "samples_t_us": g.samples_t_us[keep], "samples_w": g.samples_w[keep]}),),
                     provenance="synthetic")
    out = _run_core(tr2, 5_000, T0_US + 4_000_000)
    stalls = [x for x in out.gpus[0].gaps if x.kind == "stalled"]
    assert [x.source for x in stalls] == ["samples"]


def test_fields_keep_a_reading_only_when_the_value_changes():
    tr = synthetic_trace(lambda t: 300.0 + 100.0 * (t > 1.0), start_t_us=T0_US, duration_s=2.0)
    out = _run_core(tr, 5_000, T0_US + 2_000_000)
    w = out.gpus[0].instant_w
    assert len(w) >= 2 and all(a != b for a, b in zip(w, w[1:]))


def test_missing_sources_are_reported_and_the_rest_used():
    tr = _trace(sources=Sources(instant=True, average=True, clocks=True,
                                missing={"samples": "Not Supported", "counter": "Not Supported"}))
    out = _run_core(tr, 5_000, T0_US + 1_000_000)
    g = out.gpus[0]
    assert g.sources.available() == ["instant", "average", "clocks"]
    assert g.sources.missing["samples"] == "Not Supported"
    assert len(g.samples_t_us) == 0 and len(g.instant_t_us) > 5 and len(g.counter_j) == 0


class TickingClock(Clock):
    """Advances 4 ms per reading, as a ~4 ms counter call would."""

    def __call__(self) -> int:
        self.t_us += 4_000
        return self.t_us


def test_without_periodic_reads_the_counter_is_read_only_at_start_stop_and_marks():
    clock = TickingClock(T0_US)
    core = SamplerCore(ReplayReader(_trace(), clock=clock), [0], SamplerConfig(counter_interval_s=0))
    core.begin()
    for _ in range(100):
        clock.t_us += 20_000
        core.tick(clock.t_us)
    core.mark_counter(precise=True)
    out = core.finish()
    assert len(out.gpus[0].counter_j) == 3
    assert list(out.gpus[0].counter_precise) == [False, True, False]


def test_thread_mode_runs_in_real_time_on_a_replay():
    tr = _trace()
    s = PowerSampler([0], reader=ReplayReader(tr), config=SamplerConfig(counter_interval_s=0)).start()
    assert s.sources[0].samples
    time.sleep(0.8)
    s.mark_counter(precise=True)
    s.check()
    out = s.stop()
    g = out.gpus[0]
    assert out.provenance == "replayed" and out.mode == "thread"
    assert g.lost_samples() == 0
    assert g.samples_t_us[-1] > T0_US + 600_000
    assert len(g.counter_j) == 3
    assert set(g.call_latency_us) >= {"samples", "fields", "counter", "state"}


def test_thread_mode_with_too_slow_drains_reports_lost_samples():
    # replayed 20x faster than real time; drains every 4 s of trace time, beyond the 2.4 s buffer
    s = PowerSampler([0], reader=ReplayReader(_trace(duration_s=30.0), speed=20.0),
                     config=SamplerConfig(drain_interval_s=4.0)).start()
    time.sleep(0.7)
    out = s.stop()
    assert out.gpus[0].lost_samples() > 50


def test_a_dead_sampler_thread_raises_at_the_next_check_and_at_stop():
    s = PowerSampler([0], reader=ReplayReader(_trace(), fail_after_s=0.2)).start()
    time.sleep(0.6)
    with pytest.raises(MeasurementError, match="died"):
        s.check()
    with pytest.raises(MeasurementError):
        s.stop()


def _save_trace(tmp_path, trace):
    from kernelprof.outputs.runfile import save_run

    meta, arrays = trace.to_run_parts()
    return save_run(tmp_path / "trace.json", "power_trace", {"trace": meta}, arrays=arrays, environment={})


def test_process_mode_samples_in_a_child_process(tmp_path):
    path = _save_trace(tmp_path, _trace())
    s = PowerSampler([0], mode="process", reader={"kind": "replay", "path": str(path)},
                     config=SamplerConfig(counter_interval_s=0)).start()
    time.sleep(0.6)
    s.mark_counter(precise=True)
    s.check()
    out = s.stop()
    assert out.mode == "process" and out.provenance == "replayed"
    assert out.own_pid == os.getpid()
    g = out.gpus[0]
    assert len(g.samples_t_us) > 119 and g.lost_samples() == 0
    assert len(g.counter_j) == 3


def test_a_killed_sampler_process_raises_at_the_next_check(tmp_path):
    path = _save_trace(tmp_path, _trace())
    s = PowerSampler([0], mode="process", reader={"kind": "replay", "path": str(path)}).start()
    s._runner.proc.send_signal(signal.SIGKILL)
    s._runner.proc.wait(5)
    with pytest.raises(MeasurementError, match="died"):
        s.check()


def test_process_mode_error_at_start_is_the_childs_error(tmp_path):
    path = _save_trace(tmp_path, _trace())
    s = PowerSampler([3], mode="process", reader={"kind": "replay", "path": str(path)})
    with pytest.raises(MeasurementError, match="no GPU"):
        s.start()


def test_without_nvml_the_sampler_says_so(monkeypatch):
    try:
        nvml.init()
        pytest.skip("NVML is available on this machine")
    except NVMLUnavailableError:
        pass
    with pytest.raises(NVMLUnavailableError, match="power sampling is unavailable"):
        PowerSampler([0]).start()


def test_trace_round_trips_through_a_run_file(tmp_path):
    from kernelprof.outputs.runfile import load_run

    out = _run_core(_trace(), 5_000, T0_US + 2_000_000)
    meta, arrays = out.to_run_parts()
    from kernelprof.outputs.runfile import save_run

    path = save_run(tmp_path / "t.json", "power_trace", {"trace": meta}, arrays=arrays, environment={})
    run = load_run(path)
    back = PowerTrace.from_run_parts(run.payload["trace"], run.arrays)
    assert np.array_equal(back.gpus[0].samples_t_us, out.gpus[0].samples_t_us)
    assert back.gpus[0].sources == out.gpus[0].sources
    assert back.gpus[0].gaps == out.gpus[0].gaps


def test_other_processes_counts_around_pid_namespaces():
    assert count_other_processes([10, 11], 10) == 1
    assert count_other_processes([10], 10) == 0
    assert count_other_processes([99999], 10) == 0  # our PID hidden by a container: one is us
    assert count_other_processes([], 10) == 0


class _FakeNVML(SimpleNamespace):
    """Just enough of pynvml to check the unit conversion at the edge."""


def test_nvml_edge_converts_milliwatts_and_maps_not_found(monkeypatch):
    import pynvml

    def sample(ts, mw):
        return SimpleNamespace(timeStamp=ts, sampleValue=SimpleNamespace(uiVal=mw))

    calls = []

    def get_samples(h, kind, last):
        calls.append(last)
        if last >= 300:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return 1, [sample(200, 125_000), sample(300, 690_500)]

    field = lambda fid, ts, mw, ret=0: SimpleNamespace(fieldId=fid, timestamp=ts, valueType=1, nvmlReturn=ret,
                                                        value=SimpleNamespace(uiVal=mw))
    fake = _FakeNVML(nvmlDeviceGetSamples=get_samples, NVML_TOTAL_POWER_SAMPLES=0, NVMLError=pynvml.NVMLError,
                     nvmlDeviceGetFieldValues=lambda h, ids: [field(186, 1000, 700_000), field(185, 990, 0, ret=3)],
                     nvmlDeviceGetTotalEnergyConsumption=lambda h: 123_456_789,
                     nvmlDeviceGetCurrentClocksThrottleReasons=lambda h: 5)
    monkeypatch.setattr(nvml, "init", lambda: fake)
    monkeypatch.setattr(nvml, "_pynvml", lambda: pynvml)
    t, w = nvml.power_samples(None, 0)
    assert t.dtype == np.int64 and list(t) == [200, 300] and list(w) == [125.0, 690.5]
    t, w = nvml.power_samples(None, 300)
    assert len(t) == 0
    inst, avg = nvml.power_fields_w(None, [186, 185])
    assert (inst.t_us, inst.value) == (1000, 700.0)
    assert avg.value is None and avg.error
    assert nvml.energy_counter_j(None) == pytest.approx(123_456.789)
    assert nvml.clock_event_reasons(None) == 5  # older nvidia-ml-py: the Throttle name


def test_back_to_back_precise_marks_share_one_reading():
    """Two phase edges requested together: the second is answered by the first pinned reading."""
    clock = TickingClock(T0_US)
    core = SamplerCore(ReplayReader(_trace(), clock=clock), [0], SamplerConfig(counter_interval_s=0))
    core.begin()
    requested = time.time_ns()
    core.mark_counter(precise=True, requested_ns=requested)
    core.mark_counter(precise=True, requested_ns=requested + 1)
    core.mark_counter(precise=True, requested_ns=time.time_ns() + 10**9)  # a later request still reads
    out = core.finish()
    assert list(out.gpus[0].counter_precise) == [False, True, True, False]
