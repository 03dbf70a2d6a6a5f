"""Chrome/Perfetto trace JSON of a profiled run: phase slices, power/clock/temperature counters, a
power-limit track and, when the run recorded them, GPU kernel slices.

Open the file in ui.perfetto.dev (or chrome://tracing). Timestamps are microseconds since the
run's first sample, on NVML's epoch clock, which the Profiler maps CUDA events (phases) and
CUPTI's timestamps (kernels, via kernelprof.timeline.kernel_trace's clock markers) onto.

A buffered power sample is the mean over the ~20 ms window that ends `samples_lag_s` before its
stamp, and Perfetto holds a counter's value forward until the next event. So each sample is placed
at the START of its window (stamp - lag - window, from the GPU's sensor profile): the value then
covers the time it averages, and a prefill's rise shows at the prefill's start, not one sample late.
The instant field is held forward from its stamp, as attribution reads it; clocks and temperature
are instantaneous readings at their stamps. Buffer history from before the trace start is dropped
(Perfetto refuses negative timestamps). JSON, not TrackEvent protobuf: the `perfetto` package is
not in this environment, and the JSON import shows every track kernelprof writes.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kernelprof.attribution.intervals import Attribution, IntervalEnergy, SensorProfile, attribute
from kernelprof.timeline.clock import Timeline
from kernelprof.timeline.kernel_trace import KINDS, KernelTrace
from kernelprof.sampling.powertrace import PowerTrace

MANY_KERNELS = 200_000  # above this the JSON runs to tens of MB; all slices are kept, with a note
KERNEL_TID0 = 100  # kernel tracks' thread ids start here (tid 1 is the GPU's gap markers)
# Kernel slices carry the full CUPTI name (C++ templates run to 1000+ characters): a cut name could
# not be searched for or told apart. That makes big traces bigger (a 1B-model LLM run's 515k
# kernels made 344 MB of JSON); gzip brings repeated names back down (see traces/*.trace.json.gz).


def _us_since(t_ns: np.ndarray | int, t0_us: int) -> np.ndarray:
    """Epoch ns -> us since t0_us, subtracting in integers first: epoch us in a float64 has 0.25 us steps."""
    return (np.asarray(t_ns, dtype=np.int64) - np.int64(t0_us) * 1000) / 1e3


def _lanes(start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """A lane per slice so that slices in one lane never partly overlap (CUDA-graph branches can run
    concurrently on one stream, and Perfetto's JSON import needs properly nested slices per track)."""
    lane = np.zeros(len(start_ns), dtype=np.int64)
    ends: list[int] = []  # per lane, the end of its last slice
    for k, (s, e) in enumerate(zip(start_ns.tolist(), end_ns.tolist())):
        for j, last in enumerate(ends):
            if s >= last:
                ends[j] = e
                lane[k] = j
                break
        else:
            lane[k] = len(ends)
            ends.append(e)
    return lane


def class_lookup(fit: Any) -> dict[str, tuple[str, float | None]]:
    """kernel name -> (its class, the class's fitted power in W, or None when the class is not
    identifiable) from a KernelAttribution (kernelprof.attribution.kernel_regression)."""
    power = {c.name: (c.power_w if c.identifiable else None) for c in fit.classes}
    return {k.name: (k.class_name, power.get(k.class_name)) for k in fit.kernels}


def kernel_events(kernels: KernelTrace, t0_us: int, pid_of_device: dict[int, int],
                  classes_of_pid: dict[int, dict[str, tuple[str, float | None]]] | None = None
                  ) -> list[dict[str, Any]]:
    """Complete ("X") events, one track per (GPU, stream[, overlap lane]), under each GPU's process.

    Kernels carry no "cat" (memcpy and memset do), to keep half a million slices small. With
    `classes_of_pid` (from the run's kernel regression) each slice's args name its class and carry
    energy_j = the class's fitted power x the slice's duration, or the flag not_identifiable."""
    events: list[dict[str, Any]] = []
    # Rounded to 1 ns (0.001 us): CUPTI's resolution, and it keeps the JSON short.
    ts_us = np.round(_us_since(kernels.start_ns, t0_us), 3).tolist()
    dur_us = np.round(np.maximum(kernels.end_ns - kernels.start_ns, 0) / 1e3, 3).tolist()
    name_index, kind, names = kernels.name_index.tolist(), kernels.kind.tolist(), kernels.names
    for dev in np.unique(kernels.device).tolist():
        pid = pid_of_device[dev]
        on_dev = kernels.device == dev
        tid0 = KERNEL_TID0
        for stream in np.unique(kernels.stream[on_dev]).tolist():
            idx = np.flatnonzero(on_dev & (kernels.stream == stream))
            idx = idx[np.argsort(kernels.start_ns[idx], kind="stable")]
            lanes = _lanes(kernels.start_ns[idx], kernels.end_ns[idx])
            n_lanes = int(lanes.max()) + 1
            for lane in range(n_lanes):
                label = f"stream {stream} kernels" + (f" (overlap {lane})" if lane else "")
                events.append({"ph": "M", "pid": pid, "tid": tid0 + lane, "name": "thread_name",
                               "args": {"name": label}})
                events.append({"ph": "M", "pid": pid, "tid": tid0 + lane, "name": "thread_sort_index",
                               "args": {"sort_index": tid0 + lane}})
            for k, lane in zip(idx.tolist(), lanes.tolist()):
                n = name_index[k]
                ev = {"ph": "X", "pid": pid, "tid": tid0 + lane, "name": names[n], "ts": ts_us[k], "dur": dur_us[k]}
                if kind[k]:
                    ev["cat"] = KINDS[kind[k]]
                cls = (classes_of_pid or {}).get(pid, {}).get(names[n])
                if cls is not None:
                    ev["args"] = {"class": cls[0], "method": "class power x duration (window regression)"}
                    if cls[1] is None:
                        ev["args"]["flags"] = ["not_identifiable"]
                    else:
                        ev["args"].update(energy_j=round(cls[1] * dur_us[k] * 1e-6, 9), mean_power_w=round(cls[1], 1))
                events.append(ev)
            tid0 += n_lanes
    return events


def sample_window_start_us(t_us: np.ndarray, profile: SensorProfile) -> np.ndarray:
    """Where each buffered sample's averaging window starts: its stamp minus the lag and the window."""
    shift_us = int(round((profile.samples_lag_s + profile.samples_window_s) * 1e6))
    return np.asarray(t_us, dtype=np.int64) - shift_us


def phase_args(iv: IntervalEnergy, path: str) -> dict[str, Any]:
    """A phase slice's args: the attributed joules, watts, method and flag codes."""
    return {"path": path, "energy_j": None if iv.energy_j is None else round(iv.energy_j, 6),
            "mean_power_w": None if iv.mean_power_w is None else round(iv.mean_power_w, 3),
            "energy_method": iv.method, "flags": iv.flag_codes()}


def power_limits_by_uuid(environment: dict[str, Any] | None) -> dict[str, float]:
    """{uuid: enforced power limit W} from a run file's environment (absent in some older runs)."""
    out: dict[str, float] = {}
    for g in (environment or {}).get("gpus", []) or []:
        if g.get("uuid") and g.get("power_limit_w") is not None:
            out[g["uuid"]] = float(g["power_limit_w"])
    return out


def _counter(events: list, pid: int, name: str, t_us: np.ndarray, values: np.ndarray, unit: str, t0_us: int) -> None:
    for t, v in zip((np.asarray(t_us, dtype=np.int64) - t0_us).tolist(), np.asarray(values, float).tolist()):
        if v == v and t >= 0:  # skip NaN, and history from before the trace start
            events.append({"ph": "C", "pid": pid, "name": name, "ts": t, "args": {unit: v}})


def chrome_trace(trace: PowerTrace, timeline: Timeline, *, title: str = "kernelprof",
                 kernels: KernelTrace | None = None, attribution: Attribution | None = None,
                 profiles: Sequence[SensorProfile] | None = None,
                 power_limit_w: dict[str, float] | None = None,
                 kernel_fits: Sequence[Any] | None = None) -> dict[str, Any]:
    """The trace document: phases (with joules, watts and flags), per-GPU counters, kernels.
    `kernel_fits`: the run's KernelAttribution per GPU; kernel slices then carry class and joules.

    `attribution`: the run's attributed energy (default: attributed here with `profiles`, else each
    GPU's cached, shipped or default sensor profile). `power_limit_w`: {GPU uuid: W} for the
    power-limit track (see power_limits_by_uuid)."""
    if attribution is None:
        attribution = attribute(trace, timeline, profiles=list(profiles) if profiles else None)
    t0_us = int(trace.start_t_us)
    t_end_us = int(trace.stop_t_us) - t0_us
    events: list[dict[str, Any]] = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": title}}]
    # Phases, steps and kernels as nested complete events on one track per depth-0 lane.
    events.append({"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "phases (CUDA events)"}})
    # attribute() returns one IntervalEnergy per interval, in order (paths repeat: every decode/step).
    energies = list(attribution.intervals) if len(attribution.intervals) == len(timeline.intervals) else []
    for k, iv in enumerate(timeline.intervals):
        ev = {"ph": "X", "pid": 1, "tid": 1, "name": iv.name, "cat": iv.kind,
              "ts": round(float(_us_since(iv.t0_ns, t0_us)), 3),
              "dur": max(0.0, (iv.t1_ns - iv.t0_ns) / 1e3), "args": {"path": iv.path}}
        if energies:
            ev["args"] = phase_args(energies[k], iv.path)
        events.append(ev)
    pid_of_uuid: dict[str, int] = {}
    placement = {}
    for g, prof in zip(trace.gpus, attribution.sensor_profiles):
        pid = 10 + g.gpu
        if g.uuid:
            pid_of_uuid[g.uuid] = pid
        events.append({"ph": "M", "pid": pid, "name": "process_name", "args": {"name": f"GPU {g.gpu} {g.name}"}})
        # The sample whose window straddles the trace start is kept, at the start; older ones dropped.
        starts = sample_window_start_us(g.samples_t_us, prof)
        ends = starts + int(round(prof.samples_window_s * 1e6))
        keep = ends > t0_us
        _counter(events, pid, "power (buffered samples, W)", np.maximum(starts[keep], t0_us), g.samples_w[keep],
                 "W", t0_us)
        _counter(events, pid, "power (instant field, W)", g.instant_t_us, g.instant_w, "W", t0_us)
        _counter(events, pid, "SM clock (MHz)", g.state_t_us, g.sm_clock_mhz, "MHz", t0_us)
        _counter(events, pid, "temperature (C)", g.state_t_us, g.temperature_c, "C", t0_us)
        limit = (power_limit_w or {}).get(g.uuid or "")
        if limit is not None:  # a flat line across the run: where a phase's power meets the cap
            for t in (0, max(t_end_us, 0)):
                events.append({"ph": "C", "pid": pid, "name": "power limit (W)", "ts": t, "args": {"W": limit}})
        for gap in g.gaps:
            if gap.t0_us >= t0_us:
                events.append({"ph": "i", "pid": pid, "tid": 1, "s": "p", "name": f"gap: {gap.source} {gap.kind}",
                               "ts": gap.t0_us - t0_us})
        placement[str(g.gpu)] = {"samples_shift_us": -int(round((prof.samples_lag_s + prof.samples_window_s) * 1e6)),
                                 "sensor_profile": prof.source}
    other: dict[str, Any] = {"clock": "NVML epoch microseconds minus the trace start", "start_t_us": t0_us,
                             "provenance": trace.provenance,
                             "power_placement": {"note": "buffered samples at the start of the window they "
                                                         "average (stamp - lag - window)", "gpus": placement}}
    if kernels is not None:
        # A kernel's GPU is found by UUID (CUDA and NVML may number GPUs differently); one the
        # power trace lacks gets a process of its own.
        pid_of_device: dict[int, int] = {}
        for dev in np.unique(kernels.device).tolist():
            uuid = kernels.device_uuids.get(dev)
            if uuid in pid_of_uuid:
                pid_of_device[dev] = pid_of_uuid[uuid]
            else:
                pid_of_device[dev] = 1000 + dev
                events.append({"ph": "M", "pid": 1000 + dev, "name": "process_name",
                               "args": {"name": f"cuda:{dev} kernels (no power trace)"}})
        pid_of_gpu = {g.gpu: pid_of_uuid.get(g.uuid or "", 10 + g.gpu) for g in trace.gpus}
        classes_of_pid = {pid_of_gpu[f.gpu]: class_lookup(f) for f in (kernel_fits or ()) if f.gpu in pid_of_gpu}
        events.extend(kernel_events(kernels, t0_us, pid_of_device, classes_of_pid))
        if kernel_fits:
            other["kernel_classes"] = {str(f.gpu): [{"class": c.name, "energy_j": c.energy_j, "power_w": c.power_w,
                                                     "identifiable": c.identifiable, "reason": c.reason}
                                                    for c in f.classes] for f in kernel_fits}
        a = kernels.alignment
        other["kernels"] = {"count": len(kernels), "source": kernels.source, "alignment": a.method,
                            "offset_ns": a.offset_ns, "residual_ns": a.residual_ns, "note": a.note}
        if len(kernels) > MANY_KERNELS:
            other["kernels"]["size_note"] = (f"{len(kernels)} kernel slices (> {MANY_KERNELS}): all kept; "
                                             "the UI may load slowly")
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def write_doc(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write a trace document, gzipped when the name ends in .gz; compact (kernel traces run to millions of events)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from kernelprof.outputs.safe_paths import atomic_write_bytes

    text = json.dumps(doc, separators=(",", ":"))
    data = gzip.compress(text.encode(), mtime=0) if path.suffix == ".gz" else text.encode()
    atomic_write_bytes(path, data)  # temp file + rename: a crash never leaves half a trace
    return path


def write_chrome_trace(path: str | Path, trace: PowerTrace, timeline: Timeline, *, title: str = "kernelprof",
                       kernels: KernelTrace | None = None, attribution: Attribution | None = None,
                       profiles: Sequence[SensorProfile] | None = None,
                       power_limit_w: dict[str, float] | None = None,
                       kernel_fits: Sequence[Any] | None = None) -> Path:
    """chrome_trace written to `path` (see write_doc)."""
    return write_doc(path, chrome_trace(trace, timeline, title=title, kernels=kernels, attribution=attribution,
                                        profiles=profiles, power_limit_w=power_limit_w, kernel_fits=kernel_fits))


def trace_of_profile_run(profile_path: str | Path, trace_path: str | Path, *, title: str) -> Path:
    """The Perfetto trace of a saved profile run, with its own sensor profiles and power limit."""
    from kernelprof.outputs.runfile import load_run
    from kernelprof.profiler import load_profile_run

    from kernelprof.attribution.kernel_regression import KernelAttribution

    r = load_profile_run(profile_path)
    run = load_run(profile_path)
    fits = [KernelAttribution.from_json(k) for k in run.payload.get("kernel_attribution") or []]
    return write_chrome_trace(trace_path, r.trace, r.timeline, kernels=r.kernels, title=title,
                              profiles=r.sensor_profiles or None, power_limit_w=power_limits_by_uuid(run.environment),
                              kernel_fits=fits or None)
