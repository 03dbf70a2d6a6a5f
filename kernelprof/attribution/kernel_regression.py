"""Energy per kernel class inside a real program, by regression across the sample windows.

Each buffered sample is the mean power over its ~20 ms window (kernelprof.attribution.intervals).
A window's energy is explained by the kernels that ran in it:

    E_i = sum_c P_c x busy_ic + P_idle x idle_i          (non-negative least squares, in joules)

where busy_ic is the seconds class c ran in window i (kernelprof.attribution.kernel_classes) and idle_i
the seconds no kernel ran. P_c is the board's mean power while class c runs (not above idle: the
whole board). Standard errors come from the residuals (cov = s^2 (A_f^T A_f)^-1 over the free
coefficients). Only windows wholly inside the fitted span enter the fit; the energies then apply the
fitted powers to every kernel of the span:

    measured_j = sum_c P_c x busy_c + P_idle x idle_s + residual_j      (exactly, by construction)

The assumption: one mean power per class over the run (a GEMM's power varies with its shape and the
clocks; a class of many shapes is their time-weighted mean). Classes start as kernel names; a name
the windows cannot identify (too little busy time, collinear with another class, standard error too
large, or held at the zero bound) moves to its auto group, and a group that still fails is flagged
`not_identifiable`: its fitted energy is kept in the balance but never shown as measured.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from kernelprof.attribution.kernel_classes import (ClassOverride, auto_group, busy_seconds, merged_spans,
                                                   override_group)
from kernelprof.estimates.linear_fit import nnls

IDLE = "(idle: no kernel running)"


@dataclass(frozen=True)
class RegressionConfig:
    # A class needs about 5 windows' worth of running time (0.1 s at 20 ms) to carry a power of its
    # own: with less, one noisy window moves its power by its whole noise.
    min_busy_s: float = 0.1
    # Standard error of a class's power, as a fraction of that power, above which it is not shown as
    # measured: 5% is the validation target (benchmarks/kernel_attribution.py).
    max_rel_se: float = 0.05
    # Variance inflation 1/(1 - R^2) of a class's column on the others: above 100 (R^2 > 0.99) the
    # windows almost never see the class without the same mix of others.
    max_vif: float = 100.0
    max_rounds: int = 4
    min_windows_per_class: int = 10  # windows per fitted coefficient, at least


@dataclass(frozen=True)
class ClassEnergy:
    """One kernel class: its fitted power while running and the energy it accounts for."""

    name: str
    members: tuple[str, ...]  # kernel names in the class
    grouped: bool  # True: an auto or user group, not one name
    calls: int
    busy_s: float  # seconds it ran inside the fitted span (share-weighted where classes overlapped)
    power_w: float  # fitted mean board power while it runs
    power_se_w: float | None  # None: held at the bound or no degrees of freedom
    energy_j: float  # power_w x busy_s (fitted; shown as measured only when identifiable)
    energy_se_j: float | None
    identifiable: bool
    reason: str | None  # why it is not identifiable (or why its names were grouped)

    @property
    def energy_per_call_j(self) -> float | None:
        return self.energy_j / self.calls if self.calls else None


@dataclass(frozen=True)
class KernelEnergy:
    """One kernel name: its class's power applied to its own busy time."""

    name: str
    class_name: str
    calls: int
    busy_s: float
    energy_j: float | None  # None when its class is not identifiable
    method: str  # "own_class" | "class_power" (the group's power x this name's busy time)

    @property
    def energy_per_call_j(self) -> float | None:
        return None if self.energy_j is None or not self.calls else self.energy_j / self.calls


@dataclass(frozen=True)
class KernelAttribution:
    """Energy of a span of one GPU's run, split over kernel classes, idle time and a residual."""

    gpu: int
    t0_ns: int
    t1_ns: int
    measured_energy_j: float  # buffered samples integrated over the span
    idle_power_w: float
    idle_power_se_w: float | None
    idle_s: float
    idle_energy_j: float
    classes: tuple[ClassEnergy, ...]  # by energy, largest first
    kernels: tuple[KernelEnergy, ...]  # by energy, largest first
    residual_j: float  # measured - classes - idle
    windows: int
    dof: int
    residual_rms_w: float
    condition_number: float  # of the column-normalized design
    rounds: int
    notes: tuple[str, ...] = ()
    method: str = "nnls_window_regression"
    source: str = "nvml_samples"

    @property
    def span_s(self) -> float:
        return (self.t1_ns - self.t0_ns) / 1e9

    @property
    def unattributed_j(self) -> float:
        """The fitted energy of the classes that are not identifiable, together."""
        return float(sum(c.energy_j for c in self.classes if not c.identifiable))

    def balance_j(self) -> float:
        """classes + idle + residual; equals measured_energy_j to rounding."""
        return float(sum(c.energy_j for c in self.classes) + self.idle_energy_j + self.residual_j)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "KernelAttribution":
        d = dict(d)
        classes = tuple(ClassEnergy(**{**c, "members": tuple(c["members"])}) for c in d.pop("classes"))
        kernels = tuple(KernelEnergy(**k) for k in d.pop("kernels"))
        return cls(classes=classes, kernels=kernels, notes=tuple(d.pop("notes", ())), **d)


@dataclass
class _Fit:
    power: np.ndarray
    se: np.ndarray  # NaN where not derived
    free: np.ndarray
    vif: np.ndarray
    dof: int
    rms_w: float
    cond: float


def _solve(a: np.ndarray, y: np.ndarray, length_s: np.ndarray) -> _Fit:
    n, k = a.shape
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    an = a / scale
    x_s, free = nnls(an, y)
    x = x_s / scale
    r = y - a @ x
    dof = n - int(free.sum())
    se = np.full(k, np.nan)
    if dof > 0 and free.any():
        cov = float(r @ r) / dof * np.linalg.pinv(an[:, free].T @ an[:, free])
        se[free] = np.sqrt(np.clip(np.diag(cov), 0.0, None)) / scale[free]
    sv = np.linalg.svd(an, compute_uv=False)
    cond = float(sv[0] / sv[-1]) if len(sv) and sv[-1] > 0 else float("inf")
    # VIF from the inverse correlation-like Gram matrix of the normalized columns (no intercept: the
    # columns sum to the window length, which plays that role).
    try:
        vif = np.diag(np.linalg.inv(an.T @ an)).copy()
    except np.linalg.LinAlgError:
        vif = np.full(k, np.inf)
    return _Fit(x, se, free, vif, dof, float(np.sqrt(np.mean((r / length_s) ** 2))) if n else float("nan"), cond)


def _verdict(i: int, fit: _Fit, busy_total_s: float, cfg: RegressionConfig) -> str | None:
    """Why coefficient i is not identifiable, or None."""
    if busy_total_s < cfg.min_busy_s:
        return f"busy only {busy_total_s * 1e3:.1f} ms (< {cfg.min_busy_s * 1e3:.0f} ms, ~5 sample windows)"
    if not fit.free[i]:
        return "fit held at the zero bound (the windows cannot separate it from the others)"
    if fit.vif[i] > cfg.max_vif:
        return f"collinear with the other classes (variance inflation {fit.vif[i]:.0f} > {cfg.max_vif:.0f})"
    if not np.isfinite(fit.se[i]) or fit.se[i] > cfg.max_rel_se * fit.power[i]:
        rel = fit.se[i] / fit.power[i] if fit.power[i] > 0 else float("inf")
        return f"standard error {100 * rel:.1f}% of its power (> {100 * cfg.max_rel_se:.0f}%)"
    return None


def fit_kernel_energy(power_fn: Any, names: Sequence[str], name_index: np.ndarray, kind_names: Sequence[str],
                      start_ns: np.ndarray, end_ns: np.ndarray, span_ns: tuple[int, int], *, gpu: int = 0,
                      overrides: Sequence[ClassOverride] = (), config: RegressionConfig | None = None,
                      measured_energy_j: float | None = None, power_limit_w: float | None = None
                      ) -> KernelAttribution:
    """Fit class powers on the windows of `power_fn` (a PowerFunction) inside `span_ns`.
    With `power_limit_w` (the board's enforced limit), a class fitted clearly above it is noted:
    under the limiter the one-power-per-class assumption fails, so its joules are biased.

    names/name_index/start_ns/end_ns: one GPU's kernels (epoch ns); kind_names[k]: "kernel",
    "memcpy" or "memset" for each kernel. measured_energy_j: the span's energy (default: power_fn
    integrated over it)."""
    cfg = config or RegressionConfig()
    o_ns = power_fn.origin_us * 1000
    to_s = lambda t: (np.asarray(t, np.int64) - o_ns) / 1e9  # noqa: E731 - the power function's axis
    w0, w1 = float(to_s(span_ns[0])), float(to_s(span_ns[1]))
    s_all, e_all = to_s(start_ns), to_s(end_ns)
    inside = (e_all > w0) & (s_all < w1)
    s_all, e_all = np.clip(s_all[inside], w0, w1), np.clip(e_all[inside], w0, w1)
    idx_all = np.asarray(name_index)[inside]
    kinds_all = np.asarray(kind_names, dtype=object)[inside] if len(kind_names) else np.zeros(0, object)
    present = sorted(set(idx_all.tolist()))
    kind_of = {i: kinds_all[np.flatnonzero(idx_all == i)[0]] for i in present}
    calls = {i: int(np.sum(idx_all == i)) for i in present}

    starts, ends = power_fn.edges_s[:-1], power_fn.edges_s[1:]
    use = (~power_fn.hole) & (starts >= w0) & (ends <= w1)
    a_s, b_s = starts[use], ends[use]
    length = b_s - a_s
    y = power_fn.power_w[use] * length
    notes: list[str] = []
    measured = float(power_fn.energy_j(span_ns[0], span_ns[1]) if measured_energy_j is None else measured_energy_j)

    # Busy time of each name over the whole span (for the pre-grouping) and the class assignment.
    name_busy = {i: float(np.sum(merged_spans(s_all[idx_all == i], e_all[idx_all == i]) @ [-1.0, 1.0]))
                 for i in present}
    assign: dict[int, str] = {}
    reasons: dict[str, str] = {}
    for i in present:
        user = override_group(names[i], overrides)
        if user is not None:
            assign[i] = user
        elif name_busy[i] < cfg.min_busy_s:
            assign[i] = auto_group(names[i], kind_of[i])
            reasons.setdefault(assign[i], "names with too little busy time alone, grouped")
        else:
            assign[i] = names[i]
    max_classes = max(1, len(y) // cfg.min_windows_per_class - 1)
    singles = sorted((i for i in present if assign[i] == names[i]), key=lambda i: -name_busy[i])
    for i in singles[max_classes:]:  # more names than the windows can carry: the least busy go to groups
        assign[i] = auto_group(names[i], kind_of[i])
        reasons.setdefault(assign[i], f"more names than {len(y)} windows can fit, grouped")
    user_groups = {o.group for o in overrides}

    rounds = 0
    while True:
        rounds += 1
        cls_names = sorted(set(assign.values()))
        member_idx = {c: [i for i in present if assign[i] == c] for c in cls_names}
        spans = [merged_spans(s_all[np.isin(idx_all, member_idx[c])], e_all[np.isin(idx_all, member_idx[c])])
                 for c in cls_names]
        busy, idle = busy_seconds(a_s, b_s, spans)
        a = np.column_stack([busy, idle])
        busy_tot, idle_tot = busy_seconds(np.array([w0]), np.array([w1]), spans)
        col_tot = np.concatenate([busy_tot[0], idle_tot])
        if len(y) <= a.shape[1]:
            raise ValueError(f"{len(y)} sample windows cannot fit {a.shape[1]} powers; profile a longer run")
        fit = _solve(a, y, length)
        labels = cls_names + [IDLE]
        verdicts = [_verdict(k, fit, float(col_tot[k]), cfg) for k in range(len(labels))]
        moved = False
        if rounds < cfg.max_rounds:
            for k, c in enumerate(cls_names):
                if verdicts[k] is None:
                    continue
                for i in member_idx[c]:
                    if c == names[i] and c not in user_groups:  # a single name: to its auto group
                        assign[i] = auto_group(names[i], kind_of[i])
                        reasons.setdefault(assign[i], f"grouped: {names[i][:60]}: {verdicts[k]}")
                        moved = True
        if not moved:
            break
    if fit.cond > 1e4:
        notes.append(f"condition number {fit.cond:.0f} of the normalized design: some classes nearly always run "
                     "in the same proportions")
    classes = []
    for k, c in enumerate(cls_names):
        p = float(fit.power[k])
        se = None if np.isnan(fit.se[k]) else float(fit.se[k])
        members = tuple(names[i] for i in member_idx[c])
        grouped = not (len(members) == 1 and members[0] == c)
        classes.append(ClassEnergy(c, members, grouped, sum(calls[i] for i in member_idx[c]), float(col_tot[k]), p, se,
                                   p * float(col_tot[k]), None if se is None else se * float(col_tot[k]),
                                   verdicts[k] is None, verdicts[k] or (reasons.get(c) if grouped else None)))
    classes.sort(key=lambda c: -c.energy_j)
    if power_limit_w:
        notes.extend(above_limit_notes(classes, power_limit_w))
    p_idle = float(fit.power[-1])
    idle_se = None if np.isnan(fit.se[-1]) else float(fit.se[-1])
    idle_s = float(col_tot[-1])
    if verdicts[-1] is not None:
        notes.append(f"idle power not identifiable: {verdicts[-1]}; the idle row is the fit's value")
    by_class = {c.name: c for c in classes}
    kernels = []
    for i in present:
        c = by_class[assign[i]]
        own = float(name_busy[i]) if c.grouped else c.busy_s
        kernels.append(KernelEnergy(names[i], c.name, calls[i], own,
                                    c.power_w * own if c.identifiable else None,
                                    "class_power" if c.grouped else "own_class"))
    kernels.sort(key=lambda k: (k.energy_j is None, -(k.energy_j or 0.0), -k.busy_s))  # unidentifiable last
    if any(c.grouped for c in classes):
        notes.append("a grouped kernel's energy is its group's power x its own busy time (class_power)")
    residual = measured - float(sum(c.energy_j for c in classes)) - p_idle * idle_s
    return KernelAttribution(gpu, int(span_ns[0]), int(span_ns[1]), measured, p_idle, idle_se, idle_s,
                             p_idle * idle_s, tuple(classes), tuple(kernels), residual, int(len(y)), fit.dof,
                             fit.rms_w, fit.cond, rounds, tuple(notes))


def above_limit_notes(classes: Sequence[ClassEnergy], power_limit_w: float) -> list[str]:
    """A note for each identifiable class whose fitted power is above the power limit by more than 2%
    and by more than twice its standard error. The limiter lets short bursts overshoot (a GEMM in
    1-40 ms segments after idle), but a fit above the limit may also have given the class power
    that belongs to its neighbours: either way its joules carry an error its SE does not show."""
    out = []
    for c in classes:
        over = c.power_w - 1.02 * power_limit_w - 2 * (c.power_se_w or 0.0)
        if c.identifiable and over > 0:
            out.append(f"{c.name}: fitted {c.power_w:.0f} W is above the {power_limit_w:.0f} W power limit: "
                       "either short bursts overshoot the limiter or the fit gave it its neighbours' power; "
                       "its joules are less certain than their standard error says")
    return out


def attribute_kernels(trace: Any, kernels: Any, span_ns: tuple[int, int], profiles: Sequence[Any], *,
                      overrides: Sequence[ClassOverride] = (), config: RegressionConfig | None = None,
                      driver: str | None = None, power_limits_w: dict[str, float] | None = None
                      ) -> list[KernelAttribution]:
    """One KernelAttribution per GPU of `trace` whose UUID has kernels in the KernelTrace `kernels`;
    `power_limits_w` ({uuid: W}, e.g. perfetto.power_limits_by_uuid of the run's environment) turns
    on the check against each GPU's limit."""
    from kernelprof.attribution.intervals import AttributionConfig, _GPUModel
    from kernelprof.timeline.kernel_trace import KINDS

    out = []
    dev_of_uuid = {u: d for d, u in kernels.device_uuids.items()}
    for g, prof in zip(trace.gpus, profiles):
        dev = dev_of_uuid.get(g.uuid, g.gpu if not kernels.device_uuids else None)
        if dev is None:
            continue
        sel = kernels.device == dev
        if not sel.any():
            continue
        model = _GPUModel(g, prof, AttributionConfig())
        if model.samples is None:
            continue
        kinds = [KINDS[k] for k in kernels.kind[sel]]
        out.append(fit_kernel_energy(model.samples, kernels.names, kernels.name_index[sel], kinds,
                                     kernels.start_ns[sel], kernels.end_ns[sel], span_ns, gpu=g.gpu,
                                     overrides=overrides, config=config,
                                     power_limit_w=(power_limits_w or {}).get(g.uuid)))
    return out
