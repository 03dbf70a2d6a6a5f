"""Real recordings (tests/data/power_*.json, made on a GPU by benchmarks/record_power_fixtures.py)
replayed through the same attribution, analysis and sampler code on CPU."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernelprof.timeline.clock import Interval
from kernelprof.profiler import load_profile, load_profile_inputs

DATA = Path(__file__).resolve().parent / "data"


def fixture_path(name: str) -> Path:
    path = DATA / f"{name}.json"
    if not path.is_file():
        # The fixtures ship with the project (recorded on an H100): a missing one is a broken checkout.
        pytest.fail(f"fixture {name} is missing from tests/data (re-record with benchmarks/record_power_fixtures.py on a GPU)")
    return path


@pytest.mark.parametrize("name", ["power_idle", "power_steady", "power_square_5_95", "power_phased"])
def test_recording_is_measured_small_and_complete(name):
    path = fixture_path(name)
    size = path.stat().st_size + path.with_name(f"{name}.arrays.npz").stat().st_size
    assert size < 1_000_000
    trace, timeline, window, _, _ = load_profile_inputs(path)
    assert trace.provenance == "measured"
    g = trace.gpus[0]
    assert g.sources.samples, g.sources.missing
    assert 15.0 < g.sample_period_s() * 1e3 < 25.0  # the H100's ~20 ms buffer period
    assert g.lost_samples() == 0
    assert np.all(np.diff(g.samples_t_us) > 0)
    assert g.samples_t_us[0] < window.t0_ns // 1000 < window.t1_ns // 1000 <= g.samples_t_us[-1] + 100_000


def test_idle_power_is_plausible_and_agrees_with_the_counter():
    r = load_profile(fixture_path("power_idle"))
    assert 20.0 < r.total.mean_power_w < 250.0
    assert r.total.counter_diff_pct is not None and abs(r.total.counter_diff_pct) < 3.0


def test_steady_load_samples_agree_with_the_counter_within_2pct():
    r = load_profile(fixture_path("power_steady"))
    steady = r.phase("steady")
    assert steady.energy_counter_j is not None, steady.counter_note
    assert abs(steady.counter_diff_pct) < 2.0
    assert steady.mean_power_w > 300.0


def test_steady_load_draws_more_than_idle():
    idle = load_profile(fixture_path("power_idle"))
    steady = load_profile(fixture_path("power_steady"))
    assert steady.phase("steady").mean_power_w > 2 * idle.total.mean_power_w


def test_square_wave_samples_agree_with_the_counter_within_3pct():
    r = load_profile(fixture_path("power_square_5_95"))
    checks = [c for c in r.counter_check if c is not None]
    assert checks and abs(checks[0].diff_pct) < 3.0
    bursts = [p for p in r.phases if p.name == "burst"]
    assert len(bursts) > 30
    assert all("short_interval" in [f.code for f in b.flags] for b in bursts)  # 5 ms < the sensor window


def test_square_wave_burst_response_is_about_one_sample_window_wide():
    from kernelprof.methods.sensor import burst_response, update_period

    trace, timeline, _, _, _ = load_profile_inputs(fixture_path("power_square_5_95"))
    g = trace.gpus[0]
    bursts = [(i.t0_ns, i.t1_ns) for i in timeline.intervals if i.name == "burst"]
    r = burst_response(g.samples_t_us, g.samples_w, bursts)
    assert r.width_s is not None and 0.008 <= r.width_s <= 0.045
    assert 60.0 < update_period(g.instant_t_us).median_ms < 140.0


def test_phases_add_up_to_the_whole_within_0_1pct():
    from kernelprof.attribution.intervals import attribute

    trace, timeline, window, profiles, _ = load_profile_inputs(fixture_path("power_phased"))
    top = timeline.top_level()
    assert len(top) == 10
    whole = Interval("whole", top[0].t0_ns, top[-1].t1_ns)
    a = attribute(trace, [*top, whole], window=window, profiles=profiles)
    parts = sum(i.energy_j for i in a.intervals[:-1])
    gaps_between = sum(attribute(trace, [Interval("g", x.t1_ns, y.t0_ns)], profiles=profiles).intervals[0].energy_j
                       for x, y in zip(top[:-1], top[1:]))
    assert parts + gaps_between == pytest.approx(a.intervals[-1].energy_j, rel=1e-3)


def test_phased_run_names_loads_apart():
    r = load_profile(fixture_path("power_phased"))
    assert r.phase("gemm_4096").mean_power_w > r.phase("idle").mean_power_w + 100
    assert r.total.counter_diff_pct is not None and abs(r.total.counter_diff_pct) < 3.0


@pytest.mark.parametrize("name", ["power_steady", "power_square_5_95"])
def test_sampler_replayed_over_a_recording_drains_every_sample_once(name):
    from kernelprof.sampling.replay import ReplayReader
    from kernelprof.sampling.core import SamplerCore

    trace, _, _, _, _ = load_profile_inputs(fixture_path(name))
    src = trace.gpus[0]
    clock = [int(src.samples_t_us[0]) + 2_500_000]
    core = SamplerCore(ReplayReader(trace, clock=lambda: clock[0]), [src.gpu])
    core.begin()
    end = int(src.samples_t_us[-1])
    while clock[0] < end:
        clock[0] += 10_000
        if core.seconds_until_due(clock[0]) == 0:
            core.tick(clock[0])
    out = core.finish().gpus[0]
    assert out.lost_samples() == 0
    first = np.searchsorted(src.samples_t_us, out.samples_t_us[0])
    assert np.array_equal(out.samples_t_us, src.samples_t_us[first:first + len(out.samples_t_us)])
    assert len(out.samples_t_us) >= len(src.samples_t_us) - 130
