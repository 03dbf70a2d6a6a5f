"""One clock: CUDA event times mapped onto the host epoch clock that NVML stamps samples with.

An anchor is a CUDA event recorded right after `torch.cuda.synchronize()` at a known
`time.time_ns()`: with the stream empty, the GPU stamps the event microseconds after the host
records it. Several anchors over a run (start, stop, periodic) fit the line
    epoch_ns = epoch0_ns + offset_ns + ns_per_ms * event_ms
by least squares, where event_ms is `elapsed_time` from the first anchor's event; the slope
absorbs drift between the GPU's timer and the host clock.

A `Timeline` holds named intervals (phases, steps, kernels) on that clock, in epoch nanoseconds
(int), with their nesting (depth and a "/"-joined parent path).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

NS_PER_MS = 1e6


@dataclass(frozen=True)
class ClockAnchor:
    event_ms: float  # CUDA event time, ms after the first anchor's event
    epoch_ns: int  # host time.time_ns() just before the event was recorded


@dataclass(frozen=True)
class ClockFit:
    """epoch_ns = epoch0_ns + offset_ns + ns_per_ms * event_ms (least squares over the anchors)."""

    epoch0_ns: int
    offset_ns: float
    ns_per_ms: float
    n_anchors: int
    residual_max_ns: float
    span_s: float

    @property
    def drift_ppm(self) -> float:
        """How much faster the host clock ran than the GPU timer, in parts per million."""
        return (self.ns_per_ms / NS_PER_MS - 1.0) * 1e6

    def to_epoch_ns(self, event_ms: float | np.ndarray) -> Any:
        rel = self.offset_ns + self.ns_per_ms * np.asarray(event_ms, dtype=np.float64)
        out = self.epoch0_ns + np.round(rel).astype(np.int64)
        return int(out) if out.ndim == 0 else out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ClockFit":
        return cls(**d)


def fit_clock(anchors: Sequence[ClockAnchor]) -> ClockFit:
    """Least-squares line through the anchors; one anchor means no drift (1e6 ns per ms)."""
    if not anchors:
        raise ValueError("fit_clock needs at least one anchor")
    epoch0 = anchors[0].epoch_ns
    x = np.array([a.event_ms for a in anchors], dtype=np.float64)
    y = np.array([a.epoch_ns - epoch0 for a in anchors], dtype=np.float64)  # small numbers: no precision loss
    if len(anchors) < 2 or np.ptp(x) < 1.0:  # under 1 ms apart, a slope would be noise
        slope = NS_PER_MS
        offset = float(np.mean(y - slope * x))
    else:
        xm, ym = x.mean(), y.mean()
        slope = float(np.sum((x - xm) * (y - ym)) / np.sum((x - xm) ** 2))
        offset = float(ym - slope * xm)
    resid = y - (offset + slope * x)
    return ClockFit(epoch0_ns=int(epoch0), offset_ns=offset, ns_per_ms=slope, n_anchors=len(anchors),
                    residual_max_ns=float(np.max(np.abs(resid))), span_s=float(np.ptp(y) / 1e9))


@dataclass(frozen=True)
class Interval:
    """A named stretch of GPU time, [t0_ns, t1_ns] in epoch nanoseconds."""

    name: str
    t0_ns: int
    t1_ns: int
    kind: str = "phase"  # phase | step | kernel | burst | window
    path: str = ""  # "/"-joined names from the outermost interval down to this one
    depth: int = 0

    def __post_init__(self) -> None:
        if not self.path:
            object.__setattr__(self, "path", self.name)

    @property
    def duration_s(self) -> float:
        return (self.t1_ns - self.t0_ns) / 1e9

    @property
    def parent(self) -> str | None:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Interval":
        return cls(**d)


@dataclass(frozen=True)
class Timeline:
    """Intervals on one clock; `clock` names it ("epoch_ns": host wall clock, nanoseconds)."""

    intervals: tuple[Interval, ...] = ()
    clock: str = "epoch_ns"
    clock_fit: ClockFit | None = None
    anchors: tuple[ClockAnchor, ...] = field(default_factory=tuple)

    def top_level(self) -> list[Interval]:
        return [i for i in self.intervals if i.depth == 0]

    def children(self, path: str) -> list[Interval]:
        return [i for i in self.intervals if i.parent == path]

    def span_ns(self) -> tuple[int, int]:
        return min(i.t0_ns for i in self.intervals), max(i.t1_ns for i in self.intervals)

    def to_json(self) -> dict[str, Any]:
        return {"clock": self.clock, "intervals": [i.to_json() for i in self.intervals],
                "clock_fit": None if self.clock_fit is None else self.clock_fit.to_json(),
                "anchors": [asdict(a) for a in self.anchors]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Timeline":
        fit = d.get("clock_fit")
        return cls(intervals=tuple(Interval.from_json(x) for x in d.get("intervals", [])),
                   clock=d.get("clock", "epoch_ns"), clock_fit=None if fit is None else ClockFit.from_json(fit),
                   anchors=tuple(ClockAnchor(**a) for a in d.get("anchors", [])))


class EventClock:
    """Records anchors and intervals with CUDA events on one device; maps them with `fit()`.

    Each `anchor()` synchronizes the device (that is what makes its host time known), so take
    them where a sync does no harm: start, stop, and every few seconds at phase boundaries.
    """

    def __init__(self, device: int = 0) -> None:
        import torch

        self.torch = torch
        self.device = device
        self._anchors: list[tuple[Any, int]] = []
        self._open: dict[int, tuple[str, str, int, str, Any]] = {}
        self._closed: list[tuple[str, str, int, str, Any, Any]] = []

    def anchor(self) -> None:
        torch = self.torch
        torch.cuda.synchronize(self.device)
        ev = torch.cuda.Event(enable_timing=True)
        t_ns = time.time_ns()
        ev.record(torch.cuda.current_stream(self.device))
        self._anchors.append((ev, t_ns))

    @property
    def last_anchor_ns(self) -> int | None:
        return self._anchors[-1][1] if self._anchors else None

    def event(self) -> Any:
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record(self.torch.cuda.current_stream(self.device))
        return ev

    def add(self, name: str, path: str, depth: int, kind: str, start_ev: Any, end_ev: Any) -> None:
        self._closed.append((name, path, depth, kind, start_ev, end_ev))

    def fit(self) -> Timeline:
        """Synchronize, fit the anchors, and map every recorded interval onto the epoch clock."""
        if not self._anchors:
            raise ValueError("EventClock.fit needs at least one anchor")
        self.torch.cuda.synchronize(self.device)
        first = self._anchors[0][0]
        anchors = tuple(ClockAnchor(first.elapsed_time(ev) if i else 0.0, t)
                        for i, (ev, t) in enumerate(self._anchors))
        fit = fit_clock(anchors)
        intervals = []
        for name, path, depth, kind, a, b in self._closed:
            t0, t1 = fit.to_epoch_ns(first.elapsed_time(a)), fit.to_epoch_ns(first.elapsed_time(b))
            intervals.append(Interval(name, int(t0), int(t1), kind, path, depth))
        intervals.sort(key=lambda i: (i.t0_ns, i.depth))
        return Timeline(tuple(intervals), "epoch_ns", fit, anchors)
