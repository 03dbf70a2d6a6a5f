"""Bring a Perfetto trace written before the placement fix up to kernelprof.outputs.perfetto's
conventions, from the trace's own events, when the profile runs it came from are gone.

A workload trace (kernelprof.methods.llm.binned.write_workload_trace) merges the bins' profile runs,
which `kernelprof workload` does not keep; the shipped one can only be rewritten. The rewrite moves
each buffered sample to the start of the window it averages, drops events before the trace start,
restores full kernel names from otherData.kernel_names, adds the power-limit track, and gives every
phase slice energy_j / mean_power_w / flags by integrating the trace's own buffered samples exactly
as attribution does, but without the counter discipline (the trace holds no energy-counter reads).

`python -m kernelprof.outputs.perfetto_rewrite [TRACES_DIR]` regenerates the shipped traces: each
`X.trace.json[.gz]` whose `X.profile.json` (or `X-?.profile.json`) is there from that profile run,
the others by this rewrite.
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kernelprof.attribution.intervals import SHORT_INTERVAL_MESSAGE, PowerFunction, SensorProfile
from kernelprof.outputs.perfetto import sample_window_start_us, trace_of_profile_run, write_doc

SAMPLES = "power (buffered samples, W)"
GAP_FLAG_FRACTION = 0.05  # as AttributionConfig.gap_flag_fraction


def profile_for_gpu(gpu_name: str | None) -> SensorProfile:
    """The shipped profile of this GPU's model (not this machine's cache: a rewrite must not depend on it)."""
    from kernelprof.attribution.shipped_profiles import shipped_profile

    doc = shipped_profile(gpu_name)
    if doc is None:
        return SensorProfile()
    return SensorProfile.from_json({**doc["profile"], "source": "shipped"})


def rewrite_trace(doc: dict[str, Any], profile: SensorProfile, power_limit_w: float | None) -> dict[str, Any]:
    """A copy of `doc` with the fixes; one GPU process per power-sampled GPU, one profile for all."""
    if "power_placement" in doc.get("otherData", {}):
        return doc  # already placed
    other = dict(doc.get("otherData", {}))
    t0_us = int(other["start_t_us"])
    full = other.pop("kernel_names", {})
    shift_us = int(round((profile.samples_lag_s + profile.samples_window_s) * 1e6))
    window_us = int(round(profile.samples_window_s * 1e6))
    events, samples = [], {}
    for ev in doc["traceEvents"]:
        if ev["ph"] == "C" and ev["name"] == SAMPLES:
            samples.setdefault(ev["pid"], []).append((int(round(ev["ts"])) + t0_us, ev["args"]["W"]))
        else:
            events.append(ev)
    power = {}
    end_us = max((e["ts"] + e.get("dur", 0) for e in events if "ts" in e), default=0)
    for pid, pts in samples.items():
        pts.sort()
        stamps = np.array([t for t, _ in pts], np.int64)
        w = np.array([v for _, v in pts], float)
        power[pid] = PowerFunction.from_windows(stamps, w, period_s=profile.samples_period_s,
                                                lag_s=profile.samples_lag_s, origin_us=t0_us)
        starts = sample_window_start_us(stamps, profile)
        keep = starts + window_us > t0_us
        for t, v in zip((np.maximum(starts[keep], t0_us) - t0_us).tolist(), w[keep].tolist()):
            events.append({"ph": "C", "pid": pid, "name": SAMPLES, "ts": t, "args": {"W": v}})
        if power_limit_w is not None:
            for t in (0, end_us):
                events.append({"ph": "C", "pid": pid, "name": "power limit (W)", "ts": t, "args": {"W": power_limit_w}})
    pf = power[min(power)] if len(power) == 1 else None  # phases are summed over GPUs only in a fresh trace
    out = []
    for ev in events:
        if "ts" in ev and ev["ts"] < 0:
            continue
        if ev["ph"] == "X" and ev.get("pid") != 1 and ev["name"] in full:
            ev = dict(ev, name=full[ev["name"]])
        if ev["ph"] == "X" and ev.get("pid") == 1 and pf is not None:
            t0_ns, t1_ns = int(round((ev["ts"] + t0_us) * 1000)), int(round((ev["ts"] + ev["dur"] + t0_us) * 1000))
            dur_s = ev["dur"] / 1e6
            e_j = pf.energy_j(t0_ns, t1_ns) if pf.covered_s(t0_ns, t1_ns) > 0 else None
            flags = []
            if pf.hole_s(t0_ns, t1_ns) > GAP_FLAG_FRACTION * dur_s:
                flags.append("sample_gap")
            if dur_s < profile.samples_window_s:
                flags.append("short_interval")
            ev = dict(ev, args={**ev.get("args", {}), "energy_j": None if e_j is None else round(e_j, 6),
                                "mean_power_w": None if e_j is None or dur_s <= 0 else round(e_j / dur_s, 3),
                                "energy_method": "nvml_samples (rewritten from the trace's samples, no counter "
                                                 "discipline)", "flags": flags})
        out.append(ev)
    other["power_placement"] = {"note": "buffered samples at the start of the window they average (stamp - lag - "
                                        "window); rewritten from the trace's own events by "
                                        "kernelprof.outputs.perfetto_rewrite",
                                "samples_shift_us": -shift_us, "sensor_profile": profile.note,
                                "short_interval_means": SHORT_INTERVAL_MESSAGE}
    return {**doc, "traceEvents": out, "otherData": other}


def _read(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def regenerate_shipped(traces_dir: Path) -> list[str]:
    """Regenerate or rewrite every trace in `traces_dir`; returns one line per file saying which."""
    done = []
    for path in sorted(traces_dir.glob("*.trace.json")) + sorted(traces_dir.glob("*.trace.json.gz")):
        stem = path.name.split(".trace.json")[0]
        doc = _read(path)
        title = next(e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name")
        # `kernelprof llm --out P` writes P-<mode>.profile.json beside P-<mode>.trace.json.
        profile = traces_dir / f"{stem}.profile.json"
        if profile.exists():
            trace_of_profile_run(profile, path, title=title)
            done.append(f"{path.name}: regenerated from {profile.name}")
            continue
        run = traces_dir / f"{stem}.json"
        env = json.loads(run.read_text()).get("environment", {}) if run.exists() else {}
        gpu = (env.get("gpus") or [{}])[0]
        write_doc(path, rewrite_trace(doc, profile_for_gpu(gpu.get("name")), gpu.get("power_limit_w")))
        done.append(f"{path.name}: rewritten from its own events (no profile run shipped)")
    return done


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "traces"
    for line in regenerate_shipped(root):
        print(line)
