"""GPU kernel, memcpy and memset slices of a profiled run, on the Profiler's epoch clock.

`Profiler(kernels=True)` runs `torch.profiler` (CUPTI through kineto) for its `with` block; this
module turns the recorded GPU activity into a `KernelTrace` (interned names + numpy arrays) and
puts it on the same clock as the phases.

The clock alignment is kernelprof.timeline.kernel_clock, the kineto events to arrays
kernelprof.timeline.kineto_events, and the recorder that drives torch.profiler
kernelprof.timeline.kernel_recorder; this module holds the trace, its alignment step and the
per-phase summary, and re-exports the names callers import from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from kernelprof.timeline.kernel_clock import (MARKER_CYCLES, MARKER_PRELOAD_CYCLES, MAX_RESIDUAL_NS, ClockMarker,
                                              KernelClockAlignment, align_markers)
from kernelprof.timeline.kernel_recorder import KernelRecorder
from kernelprof.timeline.kineto_events import KINDS, GPUActivity, collect_gpu_activity

__all__ = ["ARRAY_NAMES", "KINDS", "MARKER_CYCLES", "MARKER_NAME", "MARKER_PRELOAD_CYCLES", "MAX_RESIDUAL_NS",
           "ClockMarker", "GPUActivity", "KernelClockAlignment", "KernelRecorder", "KernelTotal", "KernelTrace",
           "PhaseKernels", "align_markers", "build_kernel_trace", "collect_gpu_activity", "find_markers",
           "kernels_by_phase"]

MARKER_NAME = "spin_kernel"  # torch.cuda._sleep's kernel: at::cuda::(anonymous namespace)::spin_kernel(long)
ARRAY_NAMES = {"name_index": np.int32, "kind": np.int8, "start_ns": np.int64, "end_ns": np.int64,
               "stream": np.int64, "device": np.int16}


@dataclass(frozen=True)
class KernelTrace:
    """GPU activity of a run, one entry per kernel / memcpy / memset, on `clock` (epoch ns).

    Arrays are [n], sorted by start_ns. `name_index` points into `names`; `kind` into KINDS;
    `stream` is CUPTI's stream id (7 is the legacy default stream); `device` the CUDA index.
    """

    names: tuple[str, ...]
    name_index: np.ndarray  # int32 [n]
    kind: np.ndarray  # int8 [n]
    start_ns: np.ndarray  # int64 [n], epoch ns
    end_ns: np.ndarray  # int64 [n], epoch ns
    stream: np.ndarray  # int64 [n]
    device: np.ndarray  # int16 [n]
    alignment: KernelClockAlignment
    device_uuids: dict[int, str]  # CUDA index -> GPU UUID, to find the GPU's power track
    source: str = "torch.profiler (CUPTI via kineto)"
    clock: str = "epoch_ns"
    collect_wall_s: float | None = None  # host time to stop CUPTI and read its records, after the window

    def __len__(self) -> int:
        return int(self.start_ns.shape[0])

    @property
    def duration_ns(self) -> np.ndarray:
        return self.end_ns - self.start_ns

    def to_run_parts(self, prefix: str = "kernels") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON metadata, side arrays) for kernelprof.outputs.runfile.save_run."""
        arrays = {f"{prefix}.{k}": np.asarray(getattr(self, k), dt) for k, dt in ARRAY_NAMES.items()}
        meta = {"names": list(self.names), "kinds": list(KINDS), "count": len(self), "clock": self.clock,
                "alignment": self.alignment.to_json(), "device_uuids": {str(k): v for k, v in self.device_uuids.items()},
                "source": self.source, "collect_wall_s": self.collect_wall_s, "array_prefix": prefix}
        return meta, arrays

    @classmethod
    def from_run_parts(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> "KernelTrace":
        prefix = meta.get("array_prefix", "kernels")
        missing = [k for k in ARRAY_NAMES if f"{prefix}.{k}" not in arrays]
        if missing:
            from kernelprof.errors import RunFileError

            raise RunFileError(f"the run's kernel record lacks arrays {missing}; its .arrays.npz is from another run")
        if list(meta.get("kinds", KINDS)) != list(KINDS):
            from kernelprof.errors import RunFileError

            raise RunFileError(f"kernel kinds {meta.get('kinds')} differ from this kernelprof's {list(KINDS)}")
        kw = {k: np.asarray(arrays[f"{prefix}.{k}"], dt) for k, dt in ARRAY_NAMES.items()}
        return cls(names=tuple(meta["names"]), alignment=KernelClockAlignment.from_json(meta["alignment"]),
                   device_uuids={int(k): v for k, v in (meta.get("device_uuids") or {}).items()},
                   source=meta.get("source", "torch.profiler (CUPTI via kineto)"), clock=meta.get("clock", "epoch_ns"),
                   collect_wall_s=meta.get("collect_wall_s"), **kw)


# -- aligning the activity ---------------------------------------------------------------------
def _is_spin(act: GPUActivity) -> np.ndarray:
    """[n] bool: the entry is a torch.cuda._sleep kernel."""
    by_name = np.array([MARKER_NAME in n for n in act.names] + [False], dtype=bool)  # pad: no names, no rows
    return by_name[act.name_index]


def find_markers(act: GPUActivity, device: int, n_brackets: int) -> tuple[list[int], str | None]:
    """Indices of our marker kernels (start bracket first), and a note when they are not all there.

    Each bracket launches two spin kernels (the preload, then the marker), so the start marker is
    the 2nd spin kernel on `device` and the end marker the last; spin kernels that the workload
    launched itself fall between the two brackets and are left alone.
    """
    if n_brackets < 1:
        return [], "no marker brackets were recorded"
    spins = np.flatnonzero(_is_spin(act) & (act.device == device))
    if len(spins) < 2 * n_brackets:
        return [], (f"found {len(spins)} marker kernels ('{MARKER_NAME}') on cuda:{device}, "
                    f"expected {2 * n_brackets}")
    picks = [int(spins[1])] if n_brackets == 1 else [int(spins[1]), int(spins[-1])]
    return picks, None


def build_kernel_trace(act: GPUActivity, marker_events_ns: Sequence[tuple[int, int]], *, marker_device: int,
                       device_uuids: dict[int, str] | None = None, source: str = "torch.profiler (CUPTI via kineto)",
                       max_residual_ns: int = MAX_RESIDUAL_NS) -> KernelTrace:
    """Align `act` to the epoch clock with the marker brackets and drop the markers' own kernels.

    marker_events_ns: per bracket, (event before, event after) in epoch ns, start bracket first.
    """
    picks, missing = find_markers(act, marker_device, len(marker_events_ns))
    markers = [ClockMarker(t0, t1, int(act.start_ns[k]), int(act.end_ns[k]))
               for (t0, t1), k in zip(marker_events_ns, picks)]
    alignment = align_markers(markers, max_residual_ns=max_residual_ns, missing_note=missing)
    keep = np.ones(len(act.start_ns), dtype=bool)
    ours = _is_spin(act) & (act.device == marker_device)
    for k in picks:  # each marker and the preload spin launched just before it
        keep[k] = False
        before = np.flatnonzero(ours[:k])
        if len(before):
            keep[before[-1]] = False
    if picks:  # the CUPTI warm-up (KernelRecorder.start) ran before the start bracket: not the workload's
        keep &= act.start_ns >= act.start_ns[picks[0]]
    return KernelTrace(names=act.names, name_index=act.name_index[keep], kind=act.kind[keep],
                       start_ns=alignment.to_epoch_ns(act.start_ns[keep]),
                       end_ns=alignment.to_epoch_ns(act.end_ns[keep]), stream=act.stream[keep],
                       device=act.device[keep], alignment=alignment, device_uuids=dict(device_uuids or {}),
                       source=source)


# -- per-phase summary -------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelTotal:
    name: str
    calls: int
    gpu_time_s: float  # summed kernel durations (concurrent kernels each count)


@dataclass(frozen=True)
class PhaseKernels:
    """Kernels that started inside every instance of a phase name, heaviest first."""

    phase: str
    instances: int
    phase_time_s: float  # summed over the instances
    kernel_time_s: float  # all kernels' summed durations
    kernels: tuple[KernelTotal, ...]  # the top `top` by gpu_time_s


def kernels_by_phase(kernels: KernelTrace, timeline: Any, *, depth: int = 0, top: int = 10) -> list[PhaseKernels]:
    """Top kernels by summed GPU time per phase name at `depth` (a kernel belongs where it starts)."""
    order = np.argsort(kernels.start_ns, kind="stable")
    starts = kernels.start_ns[order]
    dur_s = (kernels.end_ns - kernels.start_ns)[order] / 1e9
    names = kernels.name_index[order]
    by_name: dict[str, list[Any]] = {}
    for iv in timeline.intervals:
        if iv.depth == depth:
            by_name.setdefault(iv.name, []).append(iv)
    out = []
    for phase, ivs in by_name.items():
        sel = np.concatenate([np.arange(np.searchsorted(starts, iv.t0_ns, "left"),
                                        np.searchsorted(starts, iv.t1_ns, "left")) for iv in ivs])
        totals = np.bincount(names[sel], weights=dur_s[sel], minlength=len(kernels.names))
        calls = np.bincount(names[sel], minlength=len(kernels.names))
        best = [int(i) for i in np.argsort(-totals, kind="stable")[:top] if calls[i]]
        out.append(PhaseKernels(phase, len(ivs), float(sum(iv.duration_s for iv in ivs)), float(totals.sum()),
                                tuple(KernelTotal(kernels.names[i], int(calls[i]), float(totals[i])) for i in best)))
    return out
