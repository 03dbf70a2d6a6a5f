"""CUDA-event to epoch clock mapping and the Timeline."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernelprof.timeline.clock import ClockAnchor, Interval, Timeline, fit_clock

EPOCH0 = 1_764_000_000_123_456_789


@settings(max_examples=100, deadline=None)
@given(drift_ppm=st.floats(-200, 200), offset_us=st.floats(-1000, 1000), n=st.integers(2, 30),
       seed=st.integers(0, 10_000))
def test_drift_fit_recovers_offset_and_slope_under_jitter(drift_ppm, offset_us, n, seed):
    rng = np.random.default_rng(seed)
    ms = np.sort(rng.uniform(0, 600_000, n))  # anchors over a 10-minute run
    ms[0] = 0.0
    ms[-1] = 600_000.0
    slope = 1e6 * (1 + drift_ppm * 1e-6)
    true = EPOCH0 + offset_us * 1e3 + slope * ms
    jitter = rng.normal(0, 2_000, n)  # 2 us host jitter per anchor
    anchors = [ClockAnchor(float(m), int(round(t + j))) for m, t, j in zip(ms, true, jitter)]
    fit = fit_clock(anchors)
    assert fit.drift_ppm == pytest.approx(drift_ppm, abs=0.05)
    mid = fit.to_epoch_ns(300_000.0)
    assert abs(mid - (EPOCH0 + offset_us * 1e3 + slope * 300_000.0)) < 20_000  # within 20 us


def test_one_anchor_means_no_drift():
    fit = fit_clock([ClockAnchor(0.0, EPOCH0)])
    assert fit.ns_per_ms == 1e6
    assert fit.to_epoch_ns(12.5) == EPOCH0 + 12_500_000


def test_to_epoch_ns_keeps_nanoseconds_at_epoch_scale():
    fit = fit_clock([ClockAnchor(0.0, EPOCH0), ClockAnchor(1000.0, EPOCH0 + 1_000_000_000)])
    assert fit.to_epoch_ns(0.001) == EPOCH0 + 1_000  # 1 us after the anchor, exactly
    arr = fit.to_epoch_ns(np.array([0.0, 500.0]))
    assert arr.dtype == np.int64 and list(arr) == [EPOCH0, EPOCH0 + 500_000_000]


def test_timeline_nesting_and_json_round_trip():
    ivs = (Interval("prefill", 0, 100), Interval("decode", 100, 400),
           Interval("step", 100, 200, path="decode/step", depth=1), Interval("step", 200, 400, path="decode/step", depth=1))
    tl = Timeline(ivs, clock_fit=fit_clock([ClockAnchor(0.0, EPOCH0)]), anchors=(ClockAnchor(0.0, EPOCH0),))
    assert [i.name for i in tl.top_level()] == ["prefill", "decode"]
    assert len(tl.children("decode")) == 2 and tl.children("decode")[0].parent == "decode"
    assert Interval("prefill", 0, 100).parent is None
    back = Timeline.from_json(tl.to_json())
    assert back == tl
    assert tl.span_ns() == (0, 400)
    assert ivs[1].duration_s == pytest.approx(300e-9)
