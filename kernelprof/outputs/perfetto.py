"""Chrome/Perfetto trace JSON of a profiled run: phase slices, power/clock/temperature counters and,
when the run recorded them, GPU kernel slices.

Open the file in ui.perfetto.dev (or chrome://tracing). Timestamps are microseconds since the
run's first sample, on NVML's epoch clock, which the Profiler maps CUDA events (phases) and
CUPTI's timestamps (kernels, via kernelprof.timeline.kernel_trace's clock markers) onto.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kernelprof.timeline.clock import Timeline
from kernelprof.timeline.kernel_trace import KINDS, KernelTrace
from kernelprof.sampling.powertrace import PowerTrace

MANY_KERNELS = 200_000  # above this the JSON runs to tens of MB; all slices are kept, with a note
KERNEL_TID0 = 100  # kernel tracks' thread ids start here (tid 1 is the GPU's gap markers)
# C++ template names run to 1000+ characters: a slice shows the head and otherData.kernel_names maps
# it to the full name once. Full names on every slice made a 1B-model LLM run's trace (515k kernels)
# 344 MB.
NAME_CHARS = 100


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


def slice_names(names: tuple[str, ...]) -> list[str]:
    """The names kernel slices show: without the return type, cut to NAME_CHARS, still distinct."""
    out: list[str] = []
    taken: set[str] = set()
    for i, name in enumerate(names):
        short = name[5:] if name.startswith("void ") else name
        if len(short) > NAME_CHARS:
            short = short[:NAME_CHARS - 3] + "..."
        if short in taken:  # two templates that differ only past the cut
            short = f"{short} #{i}"
        taken.add(short)
        out.append(short)
    return out


def kernel_events(kernels: KernelTrace, t0_us: int, pid_of_device: dict[int, int],
                  short: list[str]) -> list[dict[str, Any]]:
    """Complete ("X") events, one track per (GPU, stream[, overlap lane]), under each GPU's process.

    Kernels carry no "cat" (memcpy and memset do), to keep half a million slices small."""
    events: list[dict[str, Any]] = []
    # Rounded to 1 ns (0.001 us): CUPTI's resolution, and it keeps the JSON short.
    ts_us = np.round(_us_since(kernels.start_ns, t0_us), 3).tolist()
    dur_us = np.round(np.maximum(kernels.end_ns - kernels.start_ns, 0) / 1e3, 3).tolist()
    name_index, kind = kernels.name_index.tolist(), kernels.kind.tolist()
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
                ev = {"ph": "X", "pid": pid, "tid": tid0 + lane, "name": short[n], "ts": ts_us[k], "dur": dur_us[k]}
                if kind[k]:
                    ev["cat"] = KINDS[kind[k]]
                events.append(ev)
            tid0 += n_lanes
    return events


def chrome_trace(trace: PowerTrace, timeline: Timeline, *, title: str = "kernelprof",
                 kernels: KernelTrace | None = None) -> dict[str, Any]:
    t0_us = int(trace.start_t_us)
    events: list[dict[str, Any]] = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": title}}]
    # Phases, steps and kernels as nested complete events on one track per depth-0 lane.
    events.append({"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "phases (CUDA events)"}})
    for iv in timeline.intervals:
        events.append({"ph": "X", "pid": 1, "tid": 1, "name": iv.name, "cat": iv.kind,
                       "ts": round(float(_us_since(iv.t0_ns, t0_us)), 3),
                       "dur": max(0.0, (iv.t1_ns - iv.t0_ns) / 1e3), "args": {"path": iv.path}})
    pid_of_uuid: dict[str, int] = {}
    for g in trace.gpus:
        pid = 10 + g.gpu
        if g.uuid:
            pid_of_uuid[g.uuid] = pid
        events.append({"ph": "M", "pid": pid, "name": "process_name", "args": {"name": f"GPU {g.gpu} {g.name}"}})

        def counter(name: str, t_us: np.ndarray, values: np.ndarray, unit: str) -> None:
            for t, v in zip(t_us.tolist(), values.tolist()):
                if v == v:  # skip NaN
                    events.append({"ph": "C", "pid": pid, "name": name, "ts": t - t0_us, "args": {unit: v}})

        counter("power (buffered samples, W)", g.samples_t_us, g.samples_w, "W")
        counter("power (instant field, W)", g.instant_t_us, g.instant_w, "W")
        counter("SM clock (MHz)", g.state_t_us, g.sm_clock_mhz, "MHz")
        counter("temperature (C)", g.state_t_us, g.temperature_c, "C")
        for gap in g.gaps:
            events.append({"ph": "i", "pid": pid, "tid": 1, "s": "p", "name": f"gap: {gap.source} {gap.kind}",
                           "ts": gap.t0_us - t0_us})
    other: dict[str, Any] = {"clock": "NVML epoch microseconds minus the trace start", "start_t_us": t0_us,
                             "provenance": trace.provenance}
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
        short = slice_names(kernels.names)
        events.extend(kernel_events(kernels, t0_us, pid_of_device, short))
        a = kernels.alignment
        other["kernels"] = {"count": len(kernels), "source": kernels.source, "alignment": a.method,
                            "offset_ns": a.offset_ns, "residual_ns": a.residual_ns, "note": a.note}
        other["kernel_names"] = {s: n for s, n in zip(short, kernels.names) if s != n}  # slice name -> full
        if len(kernels) > MANY_KERNELS:
            other["kernels"]["size_note"] = (f"{len(kernels)} kernel slices (> {MANY_KERNELS}): all kept; "
                                             "the UI may load slowly")
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def write_chrome_trace(path: str | Path, trace: PowerTrace, timeline: Timeline, *, title: str = "kernelprof",
                       kernels: KernelTrace | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = chrome_trace(trace, timeline, title=title, kernels=kernels)
    from kernelprof.outputs.safe_paths import atomic_write_text

    atomic_write_text(path, json.dumps(doc, separators=(",", ":")))  # compact: kernel traces run to millions of events
    return path
