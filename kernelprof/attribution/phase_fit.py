"""Per-phase mean power fitted to the buffered samples, for phases shorter than a sample.

Each buffered sample is the mean power over its window (the time since the previous sample, ~20 ms
on an H100). Integrating those samples as a piecewise-constant function gives every phase the
*window's* mean, so a 15 ms prefill between decode steps is read partly at decode power: the bias
is about (P_neighbour - P_phase) x half a window per edge, and it does not average out over repeated
requests. Here instead each phase kind (all "prefill" intervals, all "decode" intervals, and the rest
of the window) gets one unknown mean power, and the samples inside the window are explained as

    P_sample_i x |window_i| = sum_k P_k x |window_i  overlap  intervals of kind k|

solved by least squares in joules. With many repeated requests every kind is over-determined and
the fit is unbiased under the sensor's window-average model; its standard errors come from the
residuals. The assumption it adds: one mean power per kind across the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from kernelprof.attribution.intervals import PowerFunction

OTHER = "(rest of window)"


@dataclass(frozen=True)
class KindFit:
    kind: str
    time_s: float              # total duration of the kind's intervals inside the window
    power_w: float | None      # fitted mean power; None where the samples cannot tell it
    power_se_w: float | None   # standard error of power_w
    energy_j: float | None     # power_w x time_s


@dataclass(frozen=True)
class PhaseFit:
    kinds: tuple[KindFit, ...]
    readings: int              # samples used
    residual_rms_w: float      # per-sample residual, in watts of the sample's own window
    window_energy_j: float     # the samples integrated over the window
    fitted_window_energy_j: float  # sum of the fitted kinds (incl. the rest of the window)
    notes: tuple[str, ...] = ()

    def kind(self, name: str) -> KindFit:
        return next(k for k in self.kinds if k.kind == name)

    @property
    def conservation_pct(self) -> float | None:
        if not self.window_energy_j:
            return None
        return 100.0 * (self.fitted_window_energy_j - self.window_energy_j) / self.window_energy_j


def _overlap_s(a: np.ndarray, b: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Seconds of each window [a_i, b_i] covered by the union-free spans [[s0, s1], ...]."""
    if len(spans) == 0:
        return np.zeros(len(a))
    lo = np.maximum(a[:, None], spans[None, :, 0])
    hi = np.minimum(b[:, None], spans[None, :, 1])
    return np.clip(hi - lo, 0.0, None).sum(axis=1)


def fit_phase_powers(f: PowerFunction, intervals_ns: Mapping[str, Sequence[tuple[int, int]]],
                     window_ns: tuple[int, int], *, sample_window_s: float | None = None) -> PhaseFit:
    """Fit one mean power per kind. `intervals_ns`: kind -> non-overlapping (t0, t1) epoch ns.

    Each reading averages the time since the previous one, or, with `sample_window_s`, a fixed
    window of that length ending at its (lag-corrected) stamp."""
    to_s = lambda t_ns: (int(t_ns) - f.origin_us * 1000) / 1e9  # noqa: E731 - the function's own axis
    w0, w1 = to_s(window_ns[0]), to_s(window_ns[1])
    starts, ends = f.edges_s[:-1], f.edges_s[1:]
    if sample_window_s is not None:
        starts = ends - sample_window_s
    # Only samples inside the window: one that straddles an edge mixes in the time outside, which is
    # neither a phase nor stationary (a Profiler's start-up leaves the GPU idle for ~20 ms before the
    # first phase). Fitted to an unknown of its own, such a sample dragged the first of twelve 13 ms
    # prefills, and with it the fitted prefill power, to 717 W (734 W without it; 8B batch 1, H100).
    use = (~f.hole) & (starts >= w0) & (ends <= w1)
    a, b, p = starts[use], ends[use], f.power_w[use]
    length = b - a
    names = list(intervals_ns)
    cols = []
    times = {}
    for k in names:
        spans = np.array([[max(to_s(t0), w0), min(to_s(t1), w1)] for t0, t1 in intervals_ns[k]], float).reshape(-1, 2)
        spans = spans[spans[:, 1] > spans[:, 0]]
        times[k] = float(np.sum(spans[:, 1] - spans[:, 0])) if len(spans) else 0.0
        cols.append(_overlap_s(a, b, spans))
    other = np.clip(length - np.sum(cols, axis=0) if cols else length, 0.0, None)
    times[OTHER] = max(0.0, (w1 - w0) - sum(times.values()))
    notes = []
    period = float(np.median(length)) if len(length) else 0.0
    slivers = times[OTHER] < 0.5 * period
    if slivers:
        # Slivers between phases (launch gaps of microseconds) cannot carry a power of their own; left
        # out of the equations, each sample errs by their share of it (~0.1% of its window at most).
        names_all = list(names)
        if times[OTHER] > 0:
            notes.append(f"the {times[OTHER] * 1e3:.2f} ms of the window outside any phase is too short to fit; "
                         "the window's mean power stands in for it in the energy balance")
    else:
        cols.append(other)
        names_all = names + [OTHER]
    A = np.stack(cols, axis=1) if cols else np.zeros((len(length), 0))
    y = p * length
    # A kind no window overlaps, or one that always appears with another in the same proportion,
    # cannot be told apart: drop empty columns, and report None for what stays unidentifiable.
    keep = A.sum(axis=0) > 1e-6
    sol = np.full(len(names_all), np.nan)
    se = np.full(len(names_all), np.nan)
    resid_rms = float("nan")
    if keep.sum() and len(y) > keep.sum():
        Ak = A[:, keep]
        x, *_ = np.linalg.lstsq(Ak, y, rcond=None)
        r = y - Ak @ x
        dof = len(y) - Ak.shape[1]
        sigma2 = float(r @ r) / dof
        resid_rms = float(np.sqrt(np.mean((r / length) ** 2)))
        try:
            cov = sigma2 * np.linalg.inv(Ak.T @ Ak)
            se_k = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        except np.linalg.LinAlgError:
            se_k = np.full(Ak.shape[1], np.nan)
            notes.append("the kinds are not separable by these samples (singular fit)")
        sol[keep], se[keep] = x, se_k
    else:
        notes.append(f"{len(y)} samples cannot fit {int(keep.sum())} powers")
    kinds = []
    fitted_window = 0.0
    for i, k in enumerate(names_all):
        t = times[k]
        pw = None if np.isnan(sol[i]) else float(sol[i])
        kinds.append(KindFit(k, t, pw, None if np.isnan(se[i]) else float(se[i]), None if pw is None else pw * t))
        if pw is not None:
            fitted_window += pw * t
    window_e = f.energy_j(window_ns[0], window_ns[1])
    if slivers:
        kinds.append(KindFit(OTHER, times[OTHER], None, None, None))
        if window_e is not None and w1 > w0:
            fitted_window += window_e / (w1 - w0) * times[OTHER]
    return PhaseFit(tuple(kinds), int(len(y)), resid_rms, window_e, fitted_window, tuple(notes))


def fit_profile_phases(trace, timeline, window, profile, *, gpu: int = 0, depth: int = 0) -> PhaseFit | None:
    """Fit the phases at `depth` of a profiled run, one power per name, on one GPU's buffered samples."""
    from kernelprof.attribution.intervals import AttributionConfig, _GPUModel

    g = next((x for x in trace.gpus if x.gpu == gpu), None)
    if g is None:
        return None
    model = _GPUModel(g, profile, AttributionConfig())
    if model.samples is None:
        return None
    kinds: dict[str, list[tuple[int, int]]] = {}
    for iv in timeline.intervals:
        if iv.depth == depth:
            kinds.setdefault(iv.name, []).append((iv.t0_ns, iv.t1_ns))
    return fit_phase_powers(model.samples, kinds, (window.t0_ns, window.t1_ns))
