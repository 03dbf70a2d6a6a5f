"""The counter discipline (kernelprof.attribution.counter_discipline): its math on synthetic traces (never a
measurement), and its behaviour on the real recordings in tests/data (H100, kernelprof's own sampler)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernelprof.attribution.intervals import AttributionConfig, PowerFunction, SensorProfile, attribute
from kernelprof.timeline.clock import Interval
from kernelprof.attribution.counter_discipline import build_discipline, next_update_us, on_update_grid
from kernelprof.profiler import load_profile, load_profile_inputs
from kernelprof.sampling.replay import ReplayReader, synthetic_trace
from kernelprof.sampling.core import SamplerConfig, SamplerCore

DATA = Path(__file__).resolve().parent / "data"
T0_US = 1_764_000_000_000_000
ALWAYS = AttributionConfig(counter_discipline="always")
# Recordings whose only pinned counter readings are at the window's edges (and a few marks).
EDGE_PINNED = ["power_idle", "power_steady", "power_square_5_95", "llm_8b_b1_h100", "llm_8b_b8_inrun_h100"]


def _pinned(g, t_us, counter_j):
    return replace(g, counter_t_us=np.asarray(t_us, np.int64), counter_j=np.asarray(counter_j, np.float64),
                   counter_precise=np.ones(len(t_us), bool))


# -- the math (synthetic) -----------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_pins=st.integers(2, 12), gain=st.floats(0.9, 1.1),
       cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10))
def test_spans_match_the_counter_and_intervals_still_add_up(seed, n_pins, gain, cuts):
    rng = np.random.default_rng(seed)
    tr = synthetic_trace(lambda t: 150.0 + 500.0 * (np.sin(7 * t) > 0), start_t_us=T0_US, duration_s=4.0, seed=seed)
    g = tr.gpus[0]
    f = PowerFunction.from_windows(g.samples_t_us, g.samples_w, period_s=0.020)
    pins = np.sort(T0_US + rng.choice(np.arange(100_000, 3_900_000, 100_000), n_pins, replace=False))
    raw_cum = np.array([f.energy_j(T0_US * 1000, int(p) * 1000) for p in pins])
    # a counter that reads `gain` x the samples plus noise per span: the discipline must hit it exactly
    counter = 1000.0 + np.concatenate([[0.0], np.cumsum(np.diff(raw_cum) * gain * rng.uniform(0.97, 1.03, n_pins - 1))])
    disc, note = build_discipline(f, _pinned(g, pins, counter))
    assert disc is not None, note
    for a, b, ea, eb in zip(pins[:-1], pins[1:], counter[:-1], counter[1:]):
        assert disc.power.energy_j(int(a) * 1000, int(b) * 1000) == pytest.approx(eb - ea, rel=1e-9)
    lo, hi = (T0_US - 500_000) * 1000, (T0_US + 4_000_000) * 1000
    edges = sorted({lo, hi, *(lo + int(c * (hi - lo)) for c in cuts)})
    parts = sum(disc.power.energy_j(x, y) for x, y in zip(edges[:-1], edges[1:]))
    assert parts == pytest.approx(disc.power.energy_j(lo, hi), rel=1e-9)


def test_a_counter_equal_to_the_samples_changes_nothing_and_leaves_only_pin_timing():
    tr = synthetic_trace(lambda t: 300.0 + 200.0 * np.sin(3 * t), start_t_us=T0_US, duration_s=3.0)
    g = tr.gpus[0]
    f = PowerFunction.from_windows(g.samples_t_us, g.samples_w, period_s=0.020)
    pins = T0_US + np.arange(0, 3_000_001, 500_000)
    counter = [f.energy_j(T0_US * 1000, int(p) * 1000) for p in pins]
    disc, _ = build_discipline(f, _pinned(g, pins, counter), pin_sigma_s=0.001)
    d = disc.interval((T0_US + 250_000) * 1000, (T0_US + 2_250_000) * 1000)
    assert d.energy_j == pytest.approx(d.raw_energy_j, rel=1e-9) and d.correction_pct == pytest.approx(0, abs=1e-7)
    assert d.full_spans == 3 and d.partial_s == pytest.approx(0.5) and d.coverage == 1.0
    assert d.uncertainty_j < 1.0  # no residuals: only the pins' 1 ms timing (~0.5 J at 500 W)


def test_uncertainty_is_pin_timing_on_pins_a_bridge_inside_and_none_outside():
    tr = synthetic_trace(lambda t: 200.0 + 0 * t, start_t_us=T0_US, duration_s=3.0)
    g = tr.gpus[0]
    f = PowerFunction.from_windows(g.samples_t_us, g.samples_w, period_s=0.020)
    pins = T0_US + np.array([0, 1_000_000, 2_000_000])
    counter = [0.0, 204.0, 404.0]  # span corrections +2% and 0%
    disc, _ = build_discipline(f, _pinned(g, pins, counter), pin_sigma_s=0.001)
    on_pins = disc.interval(T0_US * 1000, (T0_US + 2_000_000) * 1000)
    mid = disc.interval((T0_US + 500_000) * 1000, (T0_US + 1_500_000) * 1000)
    outside = disc.interval((T0_US + 1_500_000) * 1000, (T0_US + 2_500_000) * 1000)
    assert on_pins.energy_j == pytest.approx(404.0) and on_pins.uncertainty_j == pytest.approx(200 * 0.001 * 2 ** 0.5, rel=0.02)
    assert mid.uncertainty_j > 5 * on_pins.uncertainty_j  # half of each span's correction is a guess
    assert mid.energy_j == pytest.approx(0.5 * 204 + 0.5 * 200, rel=1e-6)
    assert outside.uncertainty_j is None and outside.coverage == pytest.approx(0.5) and "outside" in outside.uncertainty_note


def test_pins_go_onto_the_counter_update_grid_and_a_late_stamp_is_moved():
    rng = np.random.default_rng(3)
    k = np.cumsum(rng.integers(4, 7, 20))  # pins 0.4-0.6 s apart, on a 100.02 ms update grid
    true = T0_US + np.round(k * 100_020.0).astype(np.int64)
    stamps = true + rng.integers(-1_400, 1_400, len(true))  # one 2.8 ms call's spread
    stamps[7] += 8_000  # the sampler thread held up between its two reads
    snapped, note = on_update_grid(stamps, 0.0028)
    assert np.max(np.abs(snapped - true)) < 700 and "1 stamp(s) off it by" in note
    assert np.array_equal(on_update_grid(stamps[:7], 0.0028)[0], stamps[:7])  # too few to tell a bad one
    jumbled = stamps + rng.integers(-20_000, 20_000, len(stamps))  # not one grid: kept, and said
    kept, why = on_update_grid(jumbled, 0.0028)
    assert np.array_equal(kept, jumbled) and "kept" in why


def test_a_span_across_a_step_from_idle_gives_its_correction_to_the_bursts():
    """Idle read right, a square wave read 10% low: the idle part of the span across the step keeps its reading."""
    def power(t):
        return 125.0 + 565.0 * ((t >= 1.0) & (np.mod(t, 0.04) < 0.01))
    tr = synthetic_trace(power, start_t_us=T0_US, duration_s=2.0)
    g = tr.gpus[0]
    f = PowerFunction.from_windows(g.samples_t_us, g.samples_w, period_s=0.020)
    pins = T0_US + np.array([0, 500_000, 1_500_000, 2_000_000])
    cum = np.array([f.energy_j(T0_US * 1000, int(p) * 1000) for p in pins])
    floor_j = 125.0 * np.diff(pins) / 1e6
    # the counter: every span's power above 125 W 10% higher than the samples say (a scale of the whole
    # power would give the idle half of the middle span ~30% of its correction)
    counter = cum[0] + np.concatenate([[0.0], np.cumsum(1.1 * np.diff(cum) - 0.1 * floor_j)])
    disc, note = build_discipline(f, _pinned(g, pins, counter))
    idle = disc.interval((T0_US + 500_000) * 1000, (T0_US + 1_000_000) * 1000)
    busy = disc.interval((T0_US + 1_000_000) * 1000, (T0_US + 1_500_000) * 1000)
    assert abs(idle.energy_j - idle.raw_energy_j) < 0.02 * abs(busy.energy_j - busy.raw_energy_j), (idle, busy)
    assert idle.energy_j + busy.energy_j == pytest.approx(counter[2] - counter[1], rel=1e-9)


def test_next_update_is_predicted_from_the_pins_grid():
    assert next_update_us([], 5) is None
    assert next_update_us([1_000_000], 1_450_000) == 1_500_000
    assert next_update_us([1_000_000, 1_500_500], 2_000_000) == 2_001_000  # a 100.1 ms counter period


# -- the sampler pins the counter on its grid (replayed, a counter that steps every 100 ms) ------

class CallClock:
    """A driven clock that moves 3 ms per counter read, as one H200 counter call does."""

    def __init__(self, t_us: int) -> None:
        self.t_us = t_us

    def __call__(self) -> int:
        return self.t_us


def test_periodic_pins_land_on_the_counter_updates_with_a_few_reads_each():
    tr = synthetic_trace(lambda t: 200.0 + 100.0 * np.sin(t), start_t_us=T0_US, duration_s=6.0)
    clock = CallClock(T0_US + 37_000)
    reader = ReplayReader(tr, clock=clock, counter_period_s=0.1)
    reads = []
    counter_j = reader.counter_j

    def timed_read(k):  # a 3 ms call that reads the counter at its midpoint, as NVML's does
        clock.t_us += 1_500
        reads.append(clock.t_us)
        e = counter_j(k)
        clock.t_us += 1_500
        return e

    reader.counter_j = timed_read
    core = SamplerCore(reader, [0], SamplerConfig(counter_interval_s=0.5))
    core.begin()
    while clock.t_us < T0_US + 5_000_000:
        clock.t_us += 1_000
        if core.seconds_until_due(clock.t_us) == 0:
            core.tick(clock.t_us)
    g = core.finish().gpus[0]
    pins = g.counter_t_us[g.counter_precise]
    assert len(pins) >= 10
    assert np.all(np.abs((pins - T0_US) % 100_000 - 0) <= 2_000) or \
        np.all(np.abs(((pins - T0_US) % 100_000) - 100_000) <= 2_000)  # on the 100 ms update grid
    assert np.all(np.abs(np.diff(pins[1:]) - 500_000) <= 100_000)
    # the first pin polls up to a period; every later one starts just before the predicted update
    later = [r for r in reads if r > pins[1] + 10_000]
    assert len(later) <= 5 * (len(pins) - 2) + 2


# -- real recordings ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", EDGE_PINNED)
def test_old_recordings_get_no_discipline_by_default_and_say_so(name):
    r = load_profile(DATA / f"{name}.json")
    assert r.disciplines == (None,)
    assert r.total.energy_j == pytest.approx(r.total.energy_samples_j, rel=1e-12)
    assert r.total.discipline_correction_pct is None
    assert "periodic energy-counter reads" in r.total.discipline_note
    assert any("counter discipline" in n for n in r.notes)


@pytest.mark.parametrize("name", EDGE_PINNED)
def test_edge_pins_make_the_window_equal_the_counter_and_keep_the_shape(name):
    trace, timeline, window, profiles, _ = load_profile_inputs(DATA / f"{name}.json")
    g = trace.gpus[0]
    pins = g.counter_t_us[g.counter_precise]
    e = g.counter_j[g.counter_precise]
    a = attribute(trace, timeline, window=window, profiles=profiles or None, config=ALWAYS)
    s = a.disciplines[0]
    assert s is not None and s.n_pins == len(pins)
    between = attribute(trace, [Interval("pinned", int(pins[0]) * 1000, int(pins[-1]) * 1000)],
                        profiles=profiles or None, config=ALWAYS).intervals[0]
    assert between.energy_j == pytest.approx(float(e[-1] - e[0]), rel=1e-9)  # the counter, exactly
    # inside each span the disciplined power keeps the span's floor and scales the power above it by one
    # constant (the whole power where the part above the floor cannot carry the correction: floor 0)
    from kernelprof.attribution.intervals import _GPUModel

    m = _GPUModel(g, profiles[0] if profiles else SensorProfile(), ALWAYS, periodic_counter=False)
    raw, disc = m.discipline.raw, m.discipline.power
    for sp in m.discipline.spans:
        x0, x1 = (sp.t0_us - raw.origin_us) / 1e6, (sp.t1_us - raw.origin_us) / 1e6
        mids = np.linspace(x0, x1, 50)[1:-1]
        p_raw = raw.power_w[np.searchsorted(raw.edges_s, mids, side="right") - 1]
        p_disc = disc.power_w[np.searchsorted(disc.edges_s, mids, side="right") - 1]
        assert np.allclose(p_disc, sp.floor_w + (p_raw - sp.floor_w) * sp.scale_above_floor, rtol=1e-12)
        assert sp.floor_w <= p_raw.min() + 1e-9 and np.all(np.diff(p_disc[np.argsort(p_raw)]) >= -1e-9)
    # phases still add up to the whole after discipline
    tops = [iv for iv in a.intervals if iv.depth == 0]
    if tops:
        lo, hi = min(i.t0_ns for i in tops), max(i.t1_ns for i in tops)
        whole = attribute(trace, [Interval("w", lo, hi)], profiles=profiles or None, config=ALWAYS).intervals[0]
        gaps = [Interval("g", x.t1_ns, y.t0_ns) for x, y in zip(tops[:-1], tops[1:]) if y.t0_ns > x.t1_ns]
        rest = attribute(trace, gaps, profiles=profiles or None, config=ALWAYS).intervals if gaps else ()
        parts = sum(i.energy_j for i in tops) + sum(i.energy_j for i in rest)
        assert parts == pytest.approx(whole.energy_j, rel=1e-9)


def test_power_phased_held_out_pins_agree_within_the_stated_uncertainty():
    """The one recording with pins inside the window (a mark at each of 10 phase edges, ~0.55 s
    apart, H100): discipline with every other pin, then compare with the counter at the others."""
    trace, _, window, profiles, _ = load_profile_inputs(DATA / "power_phased.json")
    g = trace.gpus[0]
    idx = np.nonzero(g.counter_precise)[0]
    held = idx[1::2]
    use = np.setdiff1d(np.arange(len(g.counter_t_us)), held)
    g_used = replace(g, counter_t_us=g.counter_t_us[use], counter_j=g.counter_j[use],
                     counter_precise=g.counter_precise[use])
    ivs = [Interval(f"{a}-{b}", int(g.counter_t_us[a]) * 1000, int(g.counter_t_us[b]) * 1000)
           for step in (1, 2) for a, b in zip(idx[:-step], idx[step:])]
    a = attribute(replace(trace, gpus=(g_used,)), ivs, window=window, profiles=profiles, config=ALWAYS)
    z, raw_err, disc_err = [], [], []
    for iv in a.intervals:
        i, j = map(int, iv.name.split("-"))
        ce = float(g.counter_j[j] - g.counter_j[i])
        d = iv.gpus[0].discipline
        assert d is not None and d.uncertainty_j is not None, iv.gpus[0].discipline_note
        z.append((d.energy_j - ce) / d.uncertainty_j)
        raw_err.append(abs(d.raw_energy_j - ce))
        disc_err.append(abs(d.energy_j - ce))
        if d.full_spans and d.partial_s == 0:  # whole spans: the counter exactly
            assert d.energy_j == pytest.approx(ce, rel=1e-9)
    z = np.array(z)
    assert np.max(np.abs(z)) < 3.0, z  # honest: no held-out pin beyond 3 sigma (max 1.7 on this file)
    assert np.sqrt(np.mean(z ** 2)) < 1.5, z
    assert sum(disc_err) < 0.7 * sum(raw_err)  # and closer to the counter than the raw samples overall


def test_a_periodic_recording_is_disciplined_by_default_and_survives_a_save(tmp_path):
    from kernelprof.sampling.powertrace import PowerTrace
    from kernelprof.outputs.runfile import load_run, save_run

    trace, timeline, window, profiles, _ = load_profile_inputs(DATA / "power_steady.json")
    periodic = replace(trace, config={**trace.config, "counter_interval_s": 0.5})
    meta, arrays = periodic.to_run_parts()
    path = save_run(tmp_path / "t.json", "power_trace", {"trace": meta}, arrays=arrays, environment={})
    back = PowerTrace.from_run_parts(load_run(path).payload["trace"], load_run(path).arrays)
    a = attribute(back, timeline, window=window, profiles=profiles)
    steady = a.by_path("steady")
    d = steady.gpus[0].discipline
    assert a.disciplines[0] is not None and d is not None
    assert steady.samples_energy_j == pytest.approx(d.raw_energy_j)
    assert steady.energy_j == pytest.approx(d.energy_j) and d.correction_pct == pytest.approx(
        100 * (d.energy_j - d.raw_energy_j) / d.raw_energy_j)
    off = attribute(back, timeline, window=window, profiles=profiles,
                    config=AttributionConfig(counter_discipline="off")).by_path("steady")
    assert off.energy_j == pytest.approx(d.raw_energy_j, rel=1e-12)


def _compare_recording(path: Path):
    """A recorded square-wave fixture re-analysed as the GPU benchmark does: (rows per phase, attribution)."""
    import sys

    sys.path.insert(0, str(DATA.parent.parent))
    from benchmarks.counter_discipline import compare

    trace, timeline, window, profiles, payload = load_profile_inputs(path)
    pins = [tuple(p) for p in payload["reference_pins"]]
    names = [iv.name for iv in timeline.intervals if iv.depth == 0]
    return compare(trace, pins, names, profiles)


# Per phase, disciplined error vs the independent reference (%) on power_duty_pinned, as CPU-re-analysed in
# benchmarks/results/logs/counter-discipline-analysis-h200.md (the scale per span of the whole power gave
# +0.02 +1.18 -0.54 -0.43 +0.07 +1.23 +0.76 -0.25; raw samples +0.18 -5.16 -0.14 -1.19 +0.00 +0.34 -1.98 -2.56).
DUTY_PINNED_ERROR_PCT = {"idle": 0.180, "square_5_95": -0.134, "square_10_30": 0.148, "square_50_50": -0.158,
                         "continuous": -0.006, "idle_after": 0.343, "square_2_98": -0.168, "square_20_20": -0.009}


def test_recorded_square_waves_agree_with_the_independent_counter_within_the_target():
    """tests/data/power_duty_pinned.json: recorded on an H200 by `benchmarks/counter_discipline.py --fixture tests/data/`.

    The issue's target: every 2 s phase within 0.5% of the independent counter. Scaling each span's whole
    power missed it on 4 of 8 phases (within 1.23%; benchmarks/results/counter_discipline-h200.json, the GPU
    run): spans that straddle a step from idle into a bursty load gave the idle side part of the bursty
    side's correction, and two pins stamped 7-8 ms late moved a 450 W edge. Scaling the power above each
    span's floor, with the pins on the counter's update grid, meets it on this recording (CPU re-analysis).
    Checked too: each phase within 3 sigma of its own stated uncertainty.
    """
    path = DATA / "power_duty_pinned.json"
    if not path.is_file():
        pytest.skip("power_duty_pinned is not recorded yet: PYTHONPATH=. python benchmarks/counter_discipline.py "
                    "--fixture tests/data/ on a GPU")
    rows, att = _compare_recording(path)
    assert att.disciplines[0] is not None
    assert "update grid" in att.disciplines[0].note and "2 stamp(s)" in att.disciplines[0].note
    for r in rows:
        assert abs(r["energy_j"] - r["reference_j"]) <= 3 * r["sigma_j"], r
        assert abs(r["error_pct"]) <= 0.5, r  # the target
        # the analysis note's figures, printed to 0.001 points: the computation is deterministic, so to
        # that print's precision
        assert r["error_pct"] == pytest.approx(DUTY_PINNED_ERROR_PCT[r["name"]], abs=1e-3), r
    worst = max(abs(r["error_pct"]) for r in rows)
    worst_raw = max(abs(r["raw_error_pct"]) for r in rows)
    assert worst < 0.1 * worst_raw, (worst, worst_raw)


# Out of sample: two sweeps recorded on an H200 on 2026-12-04 after the method above was fixed
# (`counter_discipline.py --counter-interval-s 0.5,0.2,0.1`; "a" at revision dc5cdc9, "b" at e300645). Per phase,
# disciplined error vs the independent counter (%), as the GPU runs printed them
# (benchmarks/results/logs/discipline-sweep-h200-{dc5cdc9,e300645}.log). At 0.1 s pins all 16 phases are within
# the 0.5% target (worst 0.41%); at 0.5 s and 0.2 s 2 and 4 of 16 miss it (worst 1.09% and 1.10%), each within
# 2.1 sigma of its stated uncertainty: why SamplerConfig.counter_interval_s defaults to 0.1 s.
OUT_OF_SAMPLE_ERROR_PCT = {
    "_0.5s": {"idle": 0.306, "square_5_95": 0.001, "square_10_30": 0.024, "square_50_50": -0.042,
              "continuous": -0.031, "idle_after": 0.085, "square_2_98": -0.231, "square_20_20": 0.048},
    "_0.2s": {"idle": -0.259, "square_5_95": 1.104, "square_10_30": -0.337, "square_50_50": -0.016,
              "continuous": -0.004, "idle_after": -0.071, "square_2_98": -0.064, "square_20_20": 0.007},
    "_0.1s": {"idle": -0.035, "square_5_95": 0.015, "square_10_30": 0.004, "square_50_50": -0.128,
              "continuous": 0.040, "idle_after": 0.259, "square_2_98": -0.158, "square_20_20": 0.062},
    "b_0.5s": {"idle": 0.263, "square_5_95": 0.972, "square_10_30": -1.091, "square_50_50": 0.331,
               "continuous": -0.006, "idle_after": 0.151, "square_2_98": -0.182, "square_20_20": -0.016},
    "b_0.2s": {"idle": 0.125, "square_5_95": 0.787, "square_10_30": -0.930, "square_50_50": 0.586,
               "continuous": -0.194, "idle_after": -0.153, "square_2_98": 0.241, "square_20_20": -0.031},
    "b_0.1s": {"idle": 0.294, "square_5_95": -0.405, "square_10_30": 0.049, "square_50_50": 0.232,
               "continuous": -0.165, "idle_after": 0.002, "square_2_98": 0.281, "square_20_20": -0.002},
}


@pytest.mark.parametrize("recording", sorted(OUT_OF_SAMPLE_ERROR_PCT))
def test_out_of_sample_recordings_stay_within_their_stated_uncertainty(recording):
    """Fresh recordings the method was not tuned on, per pin cadence: every 2.1 s phase within 3 sigma of the
    independent counter, the disciplined worst below half the raw samples' worst, the figures the GPU run
    printed reproduced on CPU (the analysis is deterministic; 0.001 points is the print's precision), and at
    the default cadence (0.1 s) the issue's 0.5% target on every phase."""
    rows, att = _compare_recording(DATA / f"power_duty_pinned_h200_20261204{recording}.json")
    cadence_s = float(recording.split("_")[1][:-1])
    assert f"median {cadence_s:.2f} s" in att.disciplines[0].note
    for r in rows:
        assert abs(r["energy_j"] - r["reference_j"]) <= 3 * r["sigma_j"], r
        assert r["error_pct"] == pytest.approx(OUT_OF_SAMPLE_ERROR_PCT[recording][r["name"]], abs=1e-3), r
        if cadence_s == SamplerConfig().counter_interval_s:
            assert abs(r["error_pct"]) <= 0.5, r
    worst = max(abs(r["error_pct"]) for r in rows)
    worst_raw = max(abs(r["raw_error_pct"]) for r in rows)
    assert worst < 0.5 * worst_raw, (worst, worst_raw)
