"""Putting kineto's GPU timestamps on the Profiler's epoch clock, through marker-kernel brackets.

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
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

MAX_RESIDUAL_NS = 50_000  # above this the two brackets disagree enough to flag the alignment
# The preload spin must outlast the host's launches of event, marker, event. 200k cycles (0.1 ms)
# did not at the start of a run on an H100 (bracket 64 us loose: CUPTI's first activity buffers are
# set up in those launches), so ~1 ms at 2 GHz; it runs outside the measured window.
MARKER_PRELOAD_CYCLES = 2_000_000
MARKER_CYCLES = 1_000  # the marker itself: ~1.4 us on an H100 (measured, torch 2.11)


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
