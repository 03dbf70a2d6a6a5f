"""Compare variants of one op: does the faster one save energy, or only time?

For a baseline A and a candidate B, each with energy per call and time per call (median and a
confidence interval), the verdict is:
- "saves energy":             B's energy per call is lower than A's beyond the uncertainty;
- "saves only time":          B is faster, but its energy is not lower (it draws more power);
- "wastes energy":            B's energy per call is higher beyond the uncertainty and it is not faster;
- "no significant difference" otherwise.
Ratios are B / A (energy, time, mean power). The uncertainty of a ratio combines the two relative
CI half-widths in quadrature.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class VariantPoint:
    """One measured variant: per-call energy and time with their 95% CI half-widths."""

    name: str
    energy_j: float
    energy_ci_j: float
    time_s: float
    time_ci_s: float

    @property
    def power_w(self) -> float:
        return self.energy_j / self.time_s


@dataclass(frozen=True)
class Comparison:
    baseline: str
    candidate: str
    energy_ratio: float
    energy_ratio_ci: float  # half-width of the ratio's 95% interval
    time_ratio: float
    time_ratio_ci: float
    power_ratio: float
    verdict: str
    explanation: str


def _ratio_ci(a: float, a_ci: float, b: float, b_ci: float) -> tuple[float, float]:
    r = b / a
    rel = math.hypot(a_ci / a if a else 0.0, b_ci / b if b else 0.0)
    return r, r * rel


def compare_pair(a: VariantPoint, b: VariantPoint) -> Comparison:
    """Candidate `b` against baseline `a`."""
    e, e_ci = _ratio_ci(a.energy_j, a.energy_ci_j, b.energy_j, b.energy_ci_j)
    t, t_ci = _ratio_ci(a.time_s, a.time_ci_s, b.time_s, b.time_ci_s)
    p = b.power_w / a.power_w
    faster = t + t_ci < 1.0
    less_energy = e + e_ci < 1.0
    more_energy = e - e_ci > 1.0
    if less_energy:
        verdict = "saves energy"
        why = f"{b.name} uses {100 * (1 - e):.1f}% less energy per call (±{100 * e_ci:.1f}%)"
        if p > 1.0:
            why += f", though it draws {100 * (p - 1):.0f}% more power while running"
    elif faster:
        verdict = "saves only time"
        why = (f"{b.name} is {100 * (1 - t):.1f}% faster but draws {100 * (p - 1):.0f}% more power, "
               f"so energy per call changes by {100 * (e - 1):+.1f}% (±{100 * e_ci:.1f}%)")
    elif more_energy:
        verdict = "wastes energy"
        why = f"{b.name} uses {100 * (e - 1):.1f}% more energy per call (±{100 * e_ci:.1f}%)"
    else:
        verdict = "no significant difference"
        why = f"energy ratio {e:.3f} ± {e_ci:.3f} and time ratio {t:.3f} ± {t_ci:.3f} both include 1"
    return Comparison(a.name, b.name, e, e_ci, t, t_ci, p, verdict, why)


def compare_all(points: Sequence[VariantPoint], baseline: str | None = None) -> list[Comparison]:
    """Every other variant against `baseline` (default: the first)."""
    if len(points) < 2:
        raise ValueError("a comparison needs at least two measured variants")
    names = [p.name for p in points]
    base_name = baseline or names[0]
    if base_name not in names:
        raise ValueError(f"baseline {base_name!r} is not among the variants {names}")
    base = points[names.index(base_name)]
    return [compare_pair(base, p) for p in points if p.name != base_name]
