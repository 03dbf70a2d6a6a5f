"""Piecewise-constant power from a GPU's readings, and its exact integral over any interval.

Each buffered sample is the average power over the window that ends at its stamp (shifted earlier by
the sensor's lag); a field reading holds until the next one. Energy over [t0, t1] is F(t1) - F(t0)
from one cumulative function F, so adjacent intervals add up to their union to rounding.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class PowerFunction:
    """Piecewise-constant power: `power_w[i]` on [edges_s[i], edges_s[i+1]) (s after origin_us).

    `hole[i]` marks a segment no reading covered (a gap), filled with its neighbours' mean.
    """

    origin_us: int
    edges_s: np.ndarray
    power_w: np.ndarray
    hole: np.ndarray
    cum_j: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        cum = np.concatenate([[0.0], np.cumsum(self.power_w * np.diff(self.edges_s))])
        object.__setattr__(self, "cum_j", cum)

    @classmethod
    def from_windows(cls, t_us: np.ndarray, power_w: np.ndarray, *, period_s: float, lag_s: float = 0.0,
                     gap_factor: float = 1.5, origin_us: int | None = None,
                     backward: bool = True) -> "PowerFunction | None":
        """Readings as window averages ending at their stamps (`backward`) or held until the next one.

        A spacing over `gap_factor` periods becomes: the reading's own window of one period, and a
        hole between it and the previous reading's window.
        """
        t_us = np.asarray(t_us, np.int64)
        w = np.asarray(power_w, np.float64)
        if len(t_us) == 0:
            return None
        origin = int(t_us[0]) if origin_us is None else int(origin_us)
        t = (t_us - origin) / 1e6 - lag_s
        d = np.diff(t)
        gap = d > gap_factor * period_s
        if backward:  # window of sample i is (t[i-1], t[i]], or one period if a gap precedes it
            starts = np.empty(len(t))
            starts[0] = t[0] - period_s
            starts[1:] = np.where(gap, t[1:] - period_s, t[:-1])
            ends = t
            h0, h1 = t[:-1][gap], (t[1:] - period_s)[gap]
        else:  # reading i holds on [t[i], t[i+1]), or one period if a gap follows it
            starts = t
            ends = np.empty(len(t))
            ends[-1] = t[-1] + period_s
            ends[:-1] = np.where(gap, t[:-1] + period_s, t[1:])
            h0, h1 = (t[:-1] + period_s)[gap], t[1:][gap]
        hole_w = 0.5 * (w[:-1][gap] + w[1:][gap])
        s = np.concatenate([starts, h0])
        e = np.concatenate([ends, h1])
        p = np.concatenate([w, hole_w])
        hole = np.concatenate([np.zeros(len(t), bool), np.ones(len(h0), bool)])
        order = np.argsort(s, kind="stable")
        s, e, p, hole = s[order], e[order], p[order], hole[order]
        edges = np.concatenate([s, e[-1:]])
        return cls(origin, edges, p, hole)

    def _x(self, t_ns: int) -> float:
        return (int(t_ns) - self.origin_us * 1000) / 1e9

    def _cum(self, x: float) -> float:
        e = self.edges_s
        x = min(max(x, e[0]), e[-1])
        k = min(max(int(np.searchsorted(e, x, side="right")) - 1, 0), len(self.power_w) - 1)
        return float(self.cum_j[k] + self.power_w[k] * (x - e[k]))

    def energy_j(self, t0_ns: int, t1_ns: int) -> float:
        """Exact integral over [t0, t1] (the part inside the function's span)."""
        return self._cum(self._x(t1_ns)) - self._cum(self._x(t0_ns))

    def covered_s(self, t0_ns: int, t1_ns: int) -> float:
        x0, x1 = self._x(t0_ns), self._x(t1_ns)
        return max(0.0, min(x1, self.edges_s[-1]) - max(x0, self.edges_s[0]))

    def hole_s(self, t0_ns: int, t1_ns: int) -> float:
        x0, x1 = self._x(t0_ns), self._x(t1_ns)
        idx = np.nonzero(self.hole)[0]
        a, b = self.edges_s[idx], self.edges_s[idx + 1]
        return float(np.sum(np.clip(np.minimum(b, x1) - np.maximum(a, x0), 0.0, None)))

    def n_readings(self, t0_ns: int, t1_ns: int) -> int:
        """Readings whose windows overlap [t0, t1]."""
        x0, x1 = self._x(t0_ns), self._x(t1_ns)
        overlap = (self.edges_s[1:] > x0) & (self.edges_s[:-1] < x1) & ~self.hole
        return int(np.sum(overlap))
