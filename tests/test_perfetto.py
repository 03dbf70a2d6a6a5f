"""Chrome/Perfetto trace export from a shipped H100 profile (no GPU needed)."""
from __future__ import annotations

import json
from pathlib import Path

from kernelprof.outputs.perfetto import chrome_trace, write_chrome_trace
from kernelprof.profiler import load_profile_inputs

PROFILE = Path(__file__).resolve().parent.parent / "traces" / "llm-llama-3.1-8b-b8-optimized.profile.json"


def test_trace_has_phase_slices_and_power_counters(tmp_path):
    trace, timeline, *_ = load_profile_inputs(PROFILE)
    doc = chrome_trace(trace, timeline, title="t")
    ev = doc["traceEvents"]
    slices = [e for e in ev if e["ph"] == "X"]
    assert {"prefill", "decode", "step"} <= {e["name"] for e in slices}
    assert len(slices) == len(timeline.intervals)
    assert all(e["dur"] >= 0 and e["ts"] >= -1e6 for e in slices)
    power = [e for e in ev if e["ph"] == "C" and e["name"].startswith("power (buffered")]
    assert len(power) == len(trace.gpus[0].samples_w)
    # Phases lie inside the sampled span, on the same clock as the counters.
    last_sample = max(e["ts"] for e in power)
    assert all(e["ts"] + e["dur"] <= last_sample + 1e5 for e in slices)
    path = write_chrome_trace(tmp_path / "t.json", trace, timeline)
    assert json.loads(path.read_text())["traceEvents"]
