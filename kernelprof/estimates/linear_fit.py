"""Weighted non-negative least squares with standard errors: the one fit behind kernelprof's fitted models.

Every coefficient these models fit is a physical energy or power, so none may be negative. Points are
weighted by 1/measured energy so that the fit minimises relative error (a 1 J GEMM does not drown a 3 mJ
decode). Standard errors come from the free coefficients' covariance; a coefficient held at zero by its
bound has none. Used by kernelprof.estimates.energy_fit (the calibrated, activity and counters models)
and kernelprof.attribution.kernel_regression (nnls alone). Pure numpy; scipy is not required.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

WEIGHTING = "relative: minimises sum(((predicted - measured) / measured)^2)"


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
