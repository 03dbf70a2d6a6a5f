"""GPU kernel, memcpy and memset slices of a profiled run, on the Profiler's epoch clock.

`Profiler(kernels=True)` runs `torch.profiler` (CUPTI through kineto) for its `with` block; this
module turns the recorded GPU activity into a `KernelTrace` (interned names + numpy arrays) and
puts it on the same clock as the phases.

Clocks. Phases are CUDA events mapped to host epoch nanoseconds by `kernelprof.timeline.clock.EventClock`.
Kineto stamps GPU activity in its own nanoseconds (`_KinetoEvent.start_ns()`; on torch 2.11 with
CUDA 13 they read as Unix epoch ns, but nothing promises that). So the offset is measured, not
assumed: at the start and at the end of the run, `ClockMarker` brackets a tiny distinctive kernel
(`torch.cuda._sleep`, CUPTI name `...spin_kernel(long)`) between two of our CUDA events, behind a
longer spin that keeps the stream busy, so the GPU runs event, marker, event back to back. For
each bracket
    offset_ns = mid(event_t0_ns, event_t1_ns) - mid(kernel_start_ns, kernel_end_ns)
with uncertainty +-slack/2, slack = (event_t1 - event_t0) - (kernel_end - kernel_start).

The two offsets differ (`residual_ns`): in a 2 s LLM run on an H100 the end marker's offset was
325 us above the start marker's, both brackets tight to 2.5 us; in other runs 8-19 us. Both clocks
are linear maps of the GPU's timer (ours a line through the EventClock's anchors, CUPTI's its own
calibration), so their disagreement is linear in time too. The kernels are therefore mapped by the
line through both brackets,
    epoch_ns = kineto_ns + offset_ns + (kineto_ns - ref_kineto_ns) * drift_ppm / 1e6,
which puts them on the phases' clock at both ends and in between, and a residual over 50 us is
noted (it says that one of the clocks, most likely the phases' own anchors, moved that much
against the other over the run). With one bracket the offset is constant; without markers,
kineto's absolute time is taken as epoch ns (offset 0) and the alignment says so.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np

KINDS = ("kernel", "memcpy", "memset")  # `kind` codes index this tuple
MARKER_NAME = "spin_kernel"  # torch.cuda._sleep's kernel: at::cuda::(anonymous namespace)::spin_kernel(long)
MAX_RESIDUAL_NS = 50_000  # above this the two brackets disagree enough to flag the alignment
# The preload spin must outlast the host's launches of event, marker, event. 200k cycles (0.1 ms)
# did not at the start of a run on an H100 (bracket 64 us loose: CUPTI's first activity buffers are
# set up in those launches), so ~1 ms at 2 GHz; it runs outside the measured window.
MARKER_PRELOAD_CYCLES = 2_000_000
MARKER_CYCLES = 1_000  # the marker itself: ~1.4 us on an H100 (measured, torch 2.11)
ARRAY_NAMES = {"name_index": np.int32, "kind": np.int8, "start_ns": np.int64, "end_ns": np.int64,
               "stream": np.int64, "device": np.int16}


@dataclass(frozen=True)
class ClockMarker:
    """One bracket: our CUDA events around the marker kernel (epoch ns), and the marker as kineto saw it."""

    event_t0_ns: int  # epoch ns, the CUDA event recorded just before the marker kernel
    event_t1_ns: int  # epoch ns, the CUDA event recorded just after it
    kernel_start_ns: int  # kineto ns
    kernel_end_ns: int  # kineto ns

    @property
    def offset_ns(self) -> float:
        """epoch_ns - kineto_ns, from the midpoints of the bracket and the kernel."""
        # Differences first, in Python ints: an epoch ns in a float64 is only good to 256 ns.
        return ((self.event_t0_ns - self.kernel_start_ns) + (self.event_t1_ns - self.kernel_end_ns)) / 2

    @property
    def slack_ns(self) -> int:
        """How loosely the events bracket the kernel; the offset is good to +-slack/2 (negative: clocks disagree)."""
        return (self.event_t1_ns - self.event_t0_ns) - (self.kernel_end_ns - self.kernel_start_ns)


@dataclass(frozen=True)
class KernelClockAlignment:
    """How kineto's timestamps were put on the epoch clock:
    epoch_ns = kineto_ns + offset_ns + (kineto_ns - ref_kineto_ns) * drift_ppm / 1e6."""

    method: str  # "marker_kernels" | "kineto_absolute" (no usable marker: offset 0, unverified)
    offset_ns: int  # epoch_ns - kineto_ns at ref_kineto_ns (the start marker)
    ref_kineto_ns: int
    drift_ppm: float  # how much faster the phases' clock ran than kineto's; 0 with fewer than 2 markers
    residual_ns: int | None  # end bracket's offset - start bracket's offset; None with fewer than 2
    marker_offsets_ns: tuple[float, ...]
    marker_slack_ns: tuple[int, ...]
    note: str | None  # why the alignment may be off, or None when both brackets agree

    def to_epoch_ns(self, kineto_ns: np.ndarray) -> np.ndarray:
        """int64 kineto ns -> int64 epoch ns (the drift term in float64 on differences: exact to 1 ns)."""
        kineto_ns = np.asarray(kineto_ns, dtype=np.int64)
        drift = np.round((kineto_ns - np.int64(self.ref_kineto_ns)) * (self.drift_ppm * 1e-6)).astype(np.int64)
        return kineto_ns + np.int64(self.offset_ns) + drift

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "KernelClockAlignment":
        return cls(method=d["method"], offset_ns=int(d["offset_ns"]), ref_kineto_ns=int(d.get("ref_kineto_ns", 0)),
                   drift_ppm=float(d.get("drift_ppm", 0.0)),
                   residual_ns=None if d.get("residual_ns") is None else int(d["residual_ns"]),
                   marker_offsets_ns=tuple(d.get("marker_offsets_ns", ())),
                   marker_slack_ns=tuple(int(x) for x in d.get("marker_slack_ns", ())), note=d.get("note"))


def align_markers(markers: Sequence[ClockMarker], *, max_residual_ns: int = MAX_RESIDUAL_NS,
                  missing_note: str | None = None) -> KernelClockAlignment:
    """The kineto -> epoch line through the marker brackets, start first (see the module docstring)."""
    if not markers:
        return KernelClockAlignment("kineto_absolute", 0, 0, 0.0, None, (), (),
                                    (missing_note or "no marker kernel found")
                                    + "; kernel times are kineto's absolute clock taken as epoch ns, "
                                      "not checked against the phases")
    offsets = tuple(float(m.offset_ns) for m in markers)
    slack = tuple(int(m.slack_ns) for m in markers)
    mids = [(m.kernel_start_ns + m.kernel_end_ns) // 2 for m in markers]  # kineto ns, ints
    notes = []
    if missing_note:
        notes.append(missing_note)
    residual, drift_ppm = None, 0.0
    if len(markers) < 2:
        notes.append("only one marker bracket: a constant offset, unchecked for drift")
    else:
        residual = int(round(offsets[-1] - offsets[0]))
        if mids[-1] > mids[0]:
            drift_ppm = (offsets[-1] - offsets[0]) / (mids[-1] - mids[0]) * 1e6
        if abs(residual) > max_residual_ns:
            notes.append(f"the phases' clock and kineto's moved {residual / 1e3:.1f} us apart between the start and "
                         f"end markers (> {max_residual_ns / 1e3:.0f} us; {drift_ppm:.0f} ppm); kernels are mapped "
                         "through both markers, so they agree with the phases where the clocks drift linearly")
    if any(s < -2_000 or s > max_residual_ns for s in slack):
        notes.append(f"marker brackets are loose or inverted (slack {[round(s / 1e3, 1) for s in slack]} us)")
    return KernelClockAlignment("marker_kernels", int(round(offsets[0])), int(mids[0]), float(drift_ppm), residual,
                                offsets, slack, "; ".join(notes) or None)


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


# -- kineto events to arrays -----------------------------------------------------------------
@dataclass(frozen=True)
class GPUActivity:
    """Raw GPU activity on kineto's clock (ns), before alignment; arrays sorted by start."""

    names: tuple[str, ...]
    name_index: np.ndarray
    kind: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    stream: np.ndarray
    device: np.ndarray


def _kind_of(name: str, activity_type: str | None) -> int | None:
    """KINDS code, or None for GPU activity that is not a kernel/memcpy/memset (e.g. gpu_user_annotation)."""
    if activity_type is not None:  # torch 2.13 has activity_type(); 2.11 does not
        known = {"kernel": 0, "gpu_memcpy": 1, "gpu_memset": 2}
        if activity_type in known:
            return known[activity_type]
        if activity_type.startswith("gpu_") or "annotation" in activity_type:
            return None
    # CUPTI's own names: "Memcpy HtoD (Pageable -> Device)", "Memset (Device)"; the rest are kernels.
    if name.startswith("Memcpy"):
        return 1
    if name.startswith("Memset"):
        return 2
    return 0


def _is_gpu(device_type: Any, gpu_device_type: Any) -> bool:
    if gpu_device_type is not None:
        return device_type == gpu_device_type
    name = getattr(device_type, "name", None) or str(device_type).rsplit(".", 1)[-1]
    return name == "CUDA"


def collect_gpu_activity(events: Iterable[Any], *, gpu_device_type: Any = None) -> GPUActivity:
    """Kernels, memcpys and memsets out of kineto events (`_KinetoEvent`-like objects).

    Each event needs name(), device_type(), start_ns(), end_ns() (ints, kineto ns),
    device_index() and device_resource_id() (the CUDA stream for GPU events). CPU-side events
    (cudaLaunchKernel, cudaGraphLaunch, ...) are skipped; kernels that a CUDA-graph replay ran
    are GPU events like any other (CUPTI records each node's kernel).
    """
    intern: dict[str, int] = {}
    rows: list[tuple[int, int, int, int, int, int]] = []
    for e in events:
        if not _is_gpu(e.device_type(), gpu_device_type):
            continue
        hidden = getattr(e, "is_hidden_event", None)
        if hidden is not None and hidden():
            continue
        name = e.name()
        at = getattr(e, "activity_type", None)
        kind = _kind_of(name, at() if at is not None else None)
        if kind is None:
            continue
        idx = intern.setdefault(name, len(intern))
        rows.append((idx, kind, int(e.start_ns()), int(e.end_ns()), int(e.device_resource_id()), int(e.device_index())))
    arr = np.array(rows, dtype=np.int64).reshape(-1, 6)
    order = np.argsort(arr[:, 2], kind="stable")
    arr = arr[order]
    return GPUActivity(names=tuple(intern), name_index=arr[:, 0].astype(np.int32), kind=arr[:, 1].astype(np.int8),
                       start_ns=arr[:, 2].copy(), end_ns=arr[:, 3].copy(), stream=arr[:, 4].copy(),
                       device=arr[:, 5].astype(np.int16))


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


# -- the recorder the Profiler drives (needs torch and a GPU) -----------------------------------
class KernelRecorder:
    """torch.profiler around the Profiler's `with` block, plus the clock-marker brackets.

    Start it before the power sampler: CUPTI's set-up took 4.4 s on an H100 (torch 2.11), which must
    stay outside the measured window. `mark(clock)` goes right after the first anchor and right
    after the window's last event.
    """

    def __init__(self, device: int) -> None:
        import torch

        self.torch = torch
        self.device = device
        self._prof: Any = None
        self._brackets: list[tuple[Any, Any]] = []

    def start(self) -> "KernelRecorder":
        from torch.profiler import ProfilerActivity, profile

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*clears events at the end of each cycle.*")
            self._prof = profile(activities=[ProfilerActivity.CUDA])  # CUDA only: no per-op CPU records
            self._prof.start()
        # Warm-up: CUPTI sets up its activity buffers during the first traced calls (it stalled the
        # first marker bracket by 64 us once on an H100); let that happen here, before the sampler
        # starts and the EventClock takes its first anchor. A fill kernel, not a spin: spins are markers.
        torch = self.torch
        with torch.cuda.device(self.device):
            torch.empty(1, device="cuda").zero_()
            torch.cuda.Event(enable_timing=True).record()
            torch.cuda.synchronize()
        return self

    def mark(self, clock: Any) -> None:
        """Queue preload spin, event, marker spin, event on the clock's stream (see the module docstring)."""
        torch = self.torch
        with torch.cuda.device(self.device):
            torch.cuda._sleep(MARKER_PRELOAD_CYCLES)
            t0 = clock.event()
            torch.cuda._sleep(MARKER_CYCLES)
            t1 = clock.event()
        n = len(self._brackets)
        clock.add(f"clock_marker{n}", f"clock_marker{n}", 0, "clock_marker", t0, t1)
        self._brackets.append((t0, t1))

    def abort(self) -> None:
        if self._prof is not None:
            try:
                self._prof.stop()
            except Exception:  # already failing: leave the original error in charge
                pass
            self._prof = None

    def finish(self, marker_intervals: Sequence[Any], device_uuids: dict[int, str] | None = None) -> KernelTrace:
        """Stop the profiler, read the GPU activity and align it with the fitted marker intervals."""
        prof, self._prof = self._prof, None
        t0 = time.perf_counter()
        prof.stop()  # synchronizes the device, then CUPTI flushes its buffers
        results = getattr(getattr(prof, "profiler", None), "kineto_results", None)
        if results is None:
            from kernelprof.errors import MeasurementError

            raise MeasurementError(f"torch {self.torch.__version__}'s profiler exposes no kineto_results; "
                                   "kernel slices need torch >= 2.4 built with kineto (CUPTI)")
        from torch.autograd import DeviceType

        act = collect_gpu_activity(results.events(), gpu_device_type=DeviceType.CUDA)
        ivs = sorted(marker_intervals, key=lambda i: i.name)
        kt = build_kernel_trace(act, [(i.t0_ns, i.t1_ns) for i in ivs], marker_device=self.device,
                                device_uuids=device_uuids,
                                source=f"torch.profiler (CUPTI via kineto), torch {self.torch.__version__}")
        return replace(kt, collect_wall_s=time.perf_counter() - t0)
