"""Fitted energy models of one GPU: the "calibrated" and the "activity" estimates, and their validation.

Both models say what a call costs above the idle it was measured beside:

    E = P_idle x t + sum_k c_k x feature_k

- **calibrated**: features are work counts, coefficients energies per unit of work:
  e_flop_j[dtype] (J per FLOP), e_byte_j (J per minimum byte), busy_power_w (W above idle while a
  kernel is resident, whatever it computes: clocks up, SMs and L2 awake);
- **activity**: features are activity fractions x time, coefficients powers at full activity:
  tensor_w (W at 100% of the dense tensor peak), fma_w (100% of the CUDA-core FP32/FP64 peak),
  dram_w (100% of the measured copy bandwidth), busy_power_w as above. Fractions come from ncu's
  pipe counters where a kernel was profiled, else from achieved rates (FLOP/s over the datasheet's
  dense peak, bytes/s over the copy bandwidth measured in the calibration run). With achieved rates
  this is the calibrated model with one coefficient for all tensor dtypes, scaled by 1/peak:
  fewer free numbers, and a different answer wherever that constraint does not hold.

One implementation fits both: weighted non-negative least squares (every coefficient is a
physical energy or power, so none may be negative), each point weighted by 1/measured energy so
that the fit minimises relative error and a 1 J GEMM does not drown a 3 mJ decode. Standard errors
come from the free coefficients' covariance; a coefficient held at zero by its bound has none.
Validation is leave-one-out over the microbenchmarks and prediction of kernels not fitted on.

Predictions are capped at the board's power limit x time (read at calibration, not fitted): the
limiter holds average power under it. Uncapped, H200 leave-one-out put gemm-bf16-2048 at 784 W of
700 (0.88; capped 0.99: benchmarks/results/logs/calibration-analysis-h200.md). The fit stays linear.
Everything here is pure numpy over plain numbers, so it runs (and is tested) without a GPU.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from kernelprof.estimates.datasheets import normalize_dtype

# Which pipe a dtype's FLOPs run on (an fp32 GEMM with TF32 off runs on the FMA pipes).
TENSOR_DTYPES = ("bf16", "fp16", "fp8", "tf32")
FMA_DTYPES = ("fp32", "fp64")
ACTIVITY_KEYS = ("tensor", "fma", "dram")
WEIGHTING = "relative: minimises sum(((predicted - measured) / measured)^2)"


@dataclass(frozen=True)
class FitPoint:
    """One kernel measured on the card: per-call work, time, energy and the idle beside it."""

    name: str
    kind: str                          # compute | memory | mixed | low_utilization | subject
    flops_by_dtype: dict[str, float]   # FLOPs per call by dtype key ("bf16", "fp32", ...)
    bytes: float                       # minimum bytes per call (every input read, output written once)
    time_s: float                      # per call
    energy_j: float                    # per call, measured
    idle_power_w: float                # idle right after work, measured with it
    activity: dict[str, float] = field(default_factory=dict)  # fractions by ACTIVITY_KEYS
    activity_source: str = "achieved_rates"  # or "ncu"
    energy_ci_j: float | None = None
    nvml_utilization_pct: float | None = None
    source: str = ""                   # "measured ..." or "synthetic (tests the math only)"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "FitPoint":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class ActivityBasis:
    """What a fraction of 1 means: dense peaks per dtype and the copy bandwidth of this card."""

    peak_flop_s: dict[str, float]  # dense, by dtype key
    copy_bytes_s: float            # (read + written) bytes/s of a device copy, measured
    source: str

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ActivityBasis":
        return cls(dict(d["peak_flop_s"]), float(d["copy_bytes_s"]), d.get("source", ""))


def achieved_activity(flops_by_dtype: dict[str, float], bytes: float, time_s: float,
                      basis: ActivityBasis) -> dict[str, float]:
    """Activity fractions from achieved rates: FLOP/s over the dense peak of each dtype's pipe,
    bytes/s over the measured copy bandwidth. A dtype without a peak contributes nothing."""
    if time_s <= 0:
        raise ValueError(f"time_s must be positive, got {time_s}")
    out = {k: 0.0 for k in ACTIVITY_KEYS}
    for dtype, f in flops_by_dtype.items():
        key = normalize_dtype(dtype)
        peak = basis.peak_flop_s.get(key)
        if f and peak:
            out["tensor" if key in TENSOR_DTYPES else "fma"] += f / time_s / peak
    out["dram"] = bytes / time_s / basis.copy_bytes_s
    return out


def activity_from_counters(totals: Any, basis: ActivityBasis) -> dict[str, float] | None:
    """Activity fractions from ncu's counters (kernelprof.estimates.counters.run.CounterTotals) over ncu's own
    duration: tensor-pipe FLOPs by source dtype, FMA-pipe FLOPs (fp16 FMA counted against the
    fp32 peak), DRAM bytes read + written. None when ncu gave no duration."""
    t = totals.duration_s
    if not t:
        return None
    out = {k: 0.0 for k in ACTIVITY_KEYS}
    for dtype, f in (totals.tensor_flops_by_dtype or {}).items():
        peak = basis.peak_flop_s.get(dtype)
        if f and peak:
            out["tensor"] += f / t / peak
    for prec, f in (totals.fma_flops_by_precision or {}).items():
        peak = basis.peak_flop_s.get("fp64" if prec == "fp64" else "fp32")
        if f and peak:
            out["fma"] += f / t / peak
    dram = (totals.dram_read_bytes or 0.0) + (totals.dram_write_bytes or 0.0)
    out["dram"] = dram / t / basis.copy_bytes_s
    return out


# ---------------------------------------------------------------------------------------------
# The fit

def nnls(a: np.ndarray, b: np.ndarray, *, max_iter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """min ||a x - b||_2 subject to x >= 0 (Lawson and Hanson's active set; scipy is not required).

    Returns (x, free): free marks the coefficients not held at the bound."""
    m, n = a.shape
    x = np.zeros(n)
    free = np.zeros(n, dtype=bool)
    tol = 10 * np.finfo(float).eps * max(m, n) * max(1.0, float(np.abs(a).sum(axis=0).max(initial=0.0)))
    max_iter = max_iter or 3 * n + 10
    w = a.T @ (b - a @ x)
    for _ in range(max_iter):
        candidates = np.where(~free & (w > tol))[0]
        if candidates.size == 0:
            break
        free[candidates[np.argmax(w[candidates])]] = True
        while True:
            z = np.zeros(n)
            z[free] = np.linalg.lstsq(a[:, free], b, rcond=None)[0]
            if np.all(z[free] > tol):
                x = z
                break
            # Step toward z until the first free coefficient reaches zero, then hold it there.
            neg = free & (z <= tol)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            free &= x > tol
            x[~free] = 0.0
        w = a.T @ (b - a @ x)
    return x, free


@dataclass(frozen=True)
class LinearFit:
    """Coefficients of E - P_idle x t = sum_k c_k x feature_k, fitted over named points."""

    features: tuple[str, ...]
    coefficients: dict[str, float]
    standard_errors: dict[str, float | None]  # None: held at the bound (0), or no degrees of freedom left
    at_bound: tuple[str, ...]
    points: tuple[str, ...]
    dof: int                                  # points - free coefficients
    rms_rel_residual: float
    residuals_rel: dict[str, float]           # (predicted - measured) / measured, in-sample
    weighting: str = WEIGHTING

    def predict_dynamic_j(self, features: dict[str, float]) -> float | None:
        """sum c_k x feature_k; None if the kernel has a feature the fit has no coefficient for."""
        if any(v and k not in self.coefficients for k, v in features.items()):
            return None
        return float(sum(self.coefficients[k] * v for k, v in features.items() if k in self.coefficients))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "LinearFit":
        return cls(tuple(d["features"]), dict(d["coefficients"]), dict(d["standard_errors"]),
                   tuple(d["at_bound"]), tuple(d["points"]), int(d["dof"]), float(d["rms_rel_residual"]),
                   dict(d["residuals_rel"]), d.get("weighting", WEIGHTING))


def fit_linear(names: Sequence[str], features: Sequence[dict[str, float]], dynamic_j: Sequence[float],
               measured_j: Sequence[float]) -> LinearFit:
    """Weighted NNLS of dynamic_j (measured minus idle x time) on the features, weights 1/measured_j.

    Features no point has (all zero) get no coefficient. Raises ValueError when there are fewer
    points than coefficients to fit."""
    keys = sorted({k for f in features for k, v in f.items() if v})
    if len(names) <= len(keys):
        raise ValueError(f"{len(names)} points cannot fit {len(keys)} coefficients ({', '.join(keys)}) "
                         "with any check left: add microbenchmarks")
    e = np.asarray(measured_j, dtype=float)
    if np.any(e <= 0):
        raise ValueError("every point needs a positive measured energy")
    a = np.array([[f.get(k, 0.0) for k in keys] for f in features], dtype=float) / e[:, None]
    y = np.asarray(dynamic_j, dtype=float) / e
    scale = np.linalg.norm(a, axis=0)  # columns span 1e-3 s to 1e12 FLOPs: solve in unit columns
    x_s, free = nnls(a / scale, y)
    coef = x_s / scale
    resid = a @ coef - y  # = (predicted - measured) / measured
    dof = len(names) - int(free.sum())
    se: dict[str, float | None] = {k: None for k in keys}
    if dof > 0 and free.any():
        s2 = float(resid @ resid) / dof
        af = (a / scale)[:, free]
        cov = s2 * np.linalg.pinv(af.T @ af)
        for j, idx in enumerate(np.where(free)[0]):
            se[keys[idx]] = math.sqrt(max(cov[j, j], 0.0)) / scale[idx]
    return LinearFit(features=tuple(keys), coefficients={k: float(c) for k, c in zip(keys, coef)},
                     standard_errors=se, at_bound=tuple(k for k, f in zip(keys, free) if not f),
                     points=tuple(names), dof=dof, rms_rel_residual=float(np.sqrt(np.mean(resid**2))),
                     residuals_rel={n: float(r) for n, r in zip(names, resid)})


# ---------------------------------------------------------------------------------------------
# The two models

def calibrated_features(flops_by_dtype: dict[str, float], bytes: float, time_s: float) -> dict[str, float]:
    out = {f"e_flop_j[{normalize_dtype(d)}]": float(f) for d, f in flops_by_dtype.items() if f}
    out["e_byte_j"] = float(bytes)
    out["busy_power_w"] = float(time_s)
    return out


def activity_features(activity: dict[str, float], time_s: float) -> dict[str, float]:
    out = {f"{k}_w": float(activity.get(k, 0.0)) * time_s for k in ACTIVITY_KEYS}
    out["busy_power_w"] = float(time_s)
    return out


def _dynamic(p: FitPoint) -> float:
    return p.energy_j - p.idle_power_w * p.time_s


def _fit_points(points: Sequence[FitPoint], featurize: Callable[[FitPoint], dict[str, float]]) -> LinearFit:
    return fit_linear([p.name for p in points], [featurize(p) for p in points], [_dynamic(p) for p in points],
                      [p.energy_j for p in points])


def _cal_feat(p: FitPoint) -> dict[str, float]:
    return calibrated_features(p.flops_by_dtype, p.bytes, p.time_s)


def _act_feat(p: FitPoint) -> dict[str, float]:
    return activity_features(p.activity, p.time_s)


@dataclass(frozen=True)
class HeldOut:
    """A kernel predicted by a fit that did not see it: leave-one-out, or a subject kernel."""

    name: str
    kind: str
    how: str                      # "leave_one_out" | "not_fitted"
    measured_j: float
    calibrated_j: float | None
    activity_j: float | None
    note: str = ""

    @property
    def calibrated_ratio(self) -> float | None:
        return self.measured_j / self.calibrated_j if self.calibrated_j else None

    @property
    def activity_ratio(self) -> float | None:
        return self.measured_j / self.activity_j if self.activity_j else None


@dataclass(frozen=True)
class EnergyFit:
    """Both fitted models of one GPU, the points they came from, and how well they predict."""

    gpu_name: str
    gpu_uuid: str | None
    driver_version: str | None
    calibrated: LinearFit
    activity: LinearFit | None
    basis: ActivityBasis | None
    points: tuple[FitPoint, ...]
    leave_one_out: tuple[HeldOut, ...]
    not_fitted: tuple[HeldOut, ...]
    median_idle_w: float
    created: str = ""
    source: str = ""  # "measured by kernelprof calibrate ..." or "synthetic"
    skipped: tuple[str, ...] = ()
    power_limit_w: float | None = None  # the board's limit at calibration; None: predictions are not capped

    def predict_calibrated_j(self, *, flops_by_dtype: dict[str, float], bytes: float, time_s: float,
                             idle_power_w: float | None = None) -> float | None:
        dyn = self.calibrated.predict_dynamic_j(calibrated_features(flops_by_dtype, bytes, time_s))
        idle = self.median_idle_w if idle_power_w is None else idle_power_w
        return None if dyn is None else at_power_limit(idle * time_s + dyn, time_s, self.power_limit_w)

    def predict_activity_j(self, *, activity: dict[str, float], time_s: float,
                           idle_power_w: float | None = None) -> float | None:
        if self.activity is None:
            return None
        dyn = self.activity.predict_dynamic_j(activity_features(activity, time_s))
        idle = self.median_idle_w if idle_power_w is None else idle_power_w
        return None if dyn is None else at_power_limit(idle * time_s + dyn, time_s, self.power_limit_w)

    def held_out(self) -> tuple[HeldOut, ...]:
        return self.leave_one_out + self.not_fitted

    def worst_held_out_error_pct(self, model: str = "calibrated") -> float | None:
        """Largest |measured / predicted - 1| in %, over every held-out kernel the model could predict."""
        ratios = [h.calibrated_ratio if model == "calibrated" else h.activity_ratio for h in self.held_out()]
        ratios = [r for r in ratios if r is not None]
        return max(100 * abs(r - 1) for r in ratios) if ratios else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("leave_one_out", "not_fitted"):
            for h, row in zip(getattr(self, key), d[key]):
                row["calibrated_ratio"] = h.calibrated_ratio
                row["activity_ratio"] = h.activity_ratio
        d["kind"] = "energy_fit"
        d["version"] = 1
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "EnergyFit":
        def held(rows):
            return tuple(HeldOut(**{k: r[k] for k in HeldOut.__dataclass_fields__ if k in r}) for r in rows)

        return cls(gpu_name=d["gpu_name"], gpu_uuid=d.get("gpu_uuid"), driver_version=d.get("driver_version"),
                   calibrated=LinearFit.from_json(d["calibrated"]),
                   activity=LinearFit.from_json(d["activity"]) if d.get("activity") else None,
                   basis=ActivityBasis.from_json(d["basis"]) if d.get("basis") else None,
                   points=tuple(FitPoint.from_json(p) for p in d["points"]),
                   leave_one_out=held(d.get("leave_one_out", ())), not_fitted=held(d.get("not_fitted", ())),
                   median_idle_w=float(d["median_idle_w"]), created=d.get("created", ""),
                   source=d.get("source", ""), skipped=tuple(d.get("skipped", ())),
                   power_limit_w=d.get("power_limit_w"))  # absent from fits made before the cap


def at_power_limit(energy_j: float, time_s: float, power_limit_w: float | None) -> float:
    """min(energy_j, power_limit_w x time_s): the limiter holds average power at or under the limit."""
    return energy_j if not power_limit_w else min(energy_j, power_limit_w * time_s)


def _predict(cal: LinearFit, act: LinearFit | None, p: FitPoint,
             power_limit_w: float | None) -> tuple[float | None, float | None]:
    dyn_c = cal.predict_dynamic_j(_cal_feat(p))
    dyn_a = act.predict_dynamic_j(_act_feat(p)) if act is not None and p.activity else None
    base = p.idle_power_w * p.time_s

    def total(dyn: float | None) -> float | None:
        return None if dyn is None else at_power_limit(base + dyn, p.time_s, power_limit_w)

    return total(dyn_c), total(dyn_a)


def _capped_note(cal: LinearFit, act: LinearFit | None, p: FitPoint, power_limit_w: float | None) -> str:
    """Which predictions the power limit capped, and the power their sums gave."""
    over: list[str] = []
    for label, lf, feat in (("calibrated", cal, _cal_feat), ("activity", act, _act_feat)):
        dyn = lf.predict_dynamic_j(feat(p)) if lf is not None and (lf is cal or p.activity) else None
        if power_limit_w and dyn is not None and p.idle_power_w + dyn / p.time_s > power_limit_w:
            over.append(f"{label} sum {p.idle_power_w + dyn / p.time_s:.0f} W")
    return f"capped at the {power_limit_w:.0f} W power limit ({', '.join(over)})" if over else ""


def fit_energy(points: Sequence[FitPoint], *, gpu_name: str, gpu_uuid: str | None = None,
               driver_version: str | None = None, basis: ActivityBasis | None = None,
               subjects: Sequence[FitPoint] = (), created: str = "", source: str = "",
               skipped: Sequence[str] = (), power_limit_w: float | None = None) -> EnergyFit:
    """Fit both models over `points`, predict each point with a fit made without it, and predict
    `subjects` (kernels the fit never sees). The activity model is fitted only when every point
    carries activity fractions. With `power_limit_w`, every prediction is capped at it x time."""
    if len({p.name for p in points}) != len(points):
        raise ValueError("microbenchmark names must be unique")
    with_activity = bool(points) and all(p.activity for p in points)
    cal = _fit_points(points, _cal_feat)
    act = _fit_points(points, _act_feat) if with_activity else None
    loo: list[HeldOut] = []
    for i, p in enumerate(points):
        rest = [q for j, q in enumerate(points) if j != i]
        notes: list[str] = []
        c_i = a_i = None
        try:
            c_i = _fit_points(rest, _cal_feat)
            a_i = _fit_points(rest, _act_feat) if with_activity else None
        except ValueError as exc:  # too few points left for the coefficients
            notes.append(str(exc))
        pc, pa = _predict(c_i, a_i, p, power_limit_w) if c_i is not None else (None, None)
        if c_i is not None and pc is None:
            notes.append("the only point with its FLOP dtype: no e_flop for it once it is left out")
        capped = _capped_note(c_i, a_i, p, power_limit_w) if c_i is not None else ""
        if capped:
            notes.append(capped)
        loo.append(HeldOut(p.name, p.kind, "leave_one_out", p.energy_j, pc, pa, "; ".join(notes)))
    held = []
    for s in subjects:
        pc, pa = _predict(cal, act, s, power_limit_w)
        held.append(HeldOut(s.name, s.kind, "not_fitted", s.energy_j, pc, pa,
                            _capped_note(cal, act, s, power_limit_w) if pc is not None
                            else "its FLOP dtype is not among the microbenchmarks'"))
    idles = sorted(p.idle_power_w for p in points)
    return EnergyFit(gpu_name=gpu_name, gpu_uuid=gpu_uuid, driver_version=driver_version, calibrated=cal,
                     activity=act, basis=basis, points=tuple(points), leave_one_out=tuple(loo),
                     not_fitted=tuple(held), median_idle_w=float(idles[len(idles) // 2]), created=created,
                     source=source, skipped=tuple(skipped), power_limit_w=power_limit_w)
