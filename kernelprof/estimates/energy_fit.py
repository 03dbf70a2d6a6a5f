"""Fitted energy models of one GPU: the "calibrated", "activity" and "counters" estimates, and their validation.

Each model says what a call costs above the idle it was measured beside:

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
  fewer free numbers, and a different answer wherever that constraint does not hold;
- **counters**: features are what ncu counted in one call, priced per unit: e_tensor_flop_j[dtype]
  (tensor-pipe FLOPs by source dtype), e_fma_flop_j (FMA-pipe FLOPs), e_dram_byte_j (DRAM bytes read
  + written), e_l2_byte_j (L2 bytes), e_smem_wavefront_j (shared-memory wavefronts), busy_power_w.
  Made for the miss the other two cannot fix: an FMA loop and a cuBLAS SGEMM of equal FLOPs, time and
  clock differ 2.4x in dynamic energy, and only the operand traffic the SGEMM stages through shared
  memory and L2 tells them apart (benchmarks/results/logs/calibration-analysis-h200.md).

One implementation fits all three (kernelprof.estimates.linear_fit): weighted non-negative least
squares, each point weighted by 1/measured energy (relative error), standard errors from the free
coefficients' covariance. Validation is leave-one-out over the microbenchmarks and prediction of
kernels not fitted on.

Predictions are capped at the board's power limit x time (read at calibration, not fitted): the
limiter holds average power under it. Uncapped, H200 leave-one-out put gemm-bf16-2048 at 784 W of
700 (0.88; capped 0.99: benchmarks/results/logs/calibration-analysis-h200.md). The fit stays linear.
Everything here is pure numpy over plain numbers, so it runs (and is tested) without a GPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from kernelprof.estimates.datasheets import normalize_dtype
from kernelprof.estimates.linear_fit import WEIGHTING, LinearFit, fit_linear, nnls  # noqa: F401 - re-exported

# Which pipe a dtype's FLOPs run on (an fp32 GEMM with TF32 off runs on the FMA pipes).
TENSOR_DTYPES = ("bf16", "fp16", "fp8", "tf32")
FMA_DTYPES = ("fp32", "fp64")
ACTIVITY_KEYS = ("tensor", "fma", "dram")


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
    counters: dict[str, float] = field(default_factory=dict)  # ncu counts per call, by COUNTER_KEYS

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
# The three models

# Counts per call a point may carry from ncu (kernelprof.methods.calibration_counters), by key.
COUNTER_KEYS = ("fma_flops", "dram_bytes", "l2_bytes", "smem_wavefronts", "warp_instructions", "duration_s")
TENSOR_COUNTER_PREFIX = "tensor_flops["  # "tensor_flops[bf16]": tensor-pipe FLOPs by source dtype
# What the counters model prices: work on each pipe and data moved at each level. Warp instructions
# are recorded beside them but not priced (one more coefficient than 15 points can test).
COUNTER_FEATURES = {"fma_flops": "e_fma_flop_j", "dram_bytes": "e_dram_byte_j", "l2_bytes": "e_l2_byte_j",
                    "smem_wavefronts": "e_smem_wavefront_j"}
MODELS = ("calibrated", "activity", "counters")


def calibrated_features(flops_by_dtype: dict[str, float], bytes: float, time_s: float) -> dict[str, float]:
    out = {f"e_flop_j[{normalize_dtype(d)}]": float(f) for d, f in flops_by_dtype.items() if f}
    out["e_byte_j"] = float(bytes)
    out["busy_power_w"] = float(time_s)
    return out


def activity_features(activity: dict[str, float], time_s: float) -> dict[str, float]:
    out = {f"{k}_w": float(activity.get(k, 0.0)) * time_s for k in ACTIVITY_KEYS}
    out["busy_power_w"] = float(time_s)
    return out


def counter_features(counters: dict[str, float], time_s: float) -> dict[str, float]:
    """Counted work and traffic per call priced per unit, plus busy power x time (the measured time,
    not ncu's: ncu replays one call at unmanaged clocks, the energy is the settled state's)."""
    out = {f"e_tensor_flop_j[{k[len(TENSOR_COUNTER_PREFIX):-1]}]": float(v) for k, v in counters.items()
           if k.startswith(TENSOR_COUNTER_PREFIX) and v}
    out.update({feat: float(counters.get(key) or 0.0) for key, feat in COUNTER_FEATURES.items()})
    out["busy_power_w"] = float(time_s)
    return out


def _dynamic(p: FitPoint) -> float:
    return p.energy_j - p.idle_power_w * p.time_s


def _fit_points(points: Sequence[FitPoint], featurize: Callable[[FitPoint], dict[str, float]]) -> LinearFit:
    return fit_linear([p.name for p in points], [featurize(p) for p in points], [_dynamic(p) for p in points],
                      [p.energy_j for p in points])


_FEATURIZE: dict[str, Callable[[FitPoint], dict[str, float]]] = {
    "calibrated": lambda p: calibrated_features(p.flops_by_dtype, p.bytes, p.time_s),
    "activity": lambda p: activity_features(p.activity, p.time_s),
    "counters": lambda p: counter_features(p.counters, p.time_s),
}


def _counted(p: FitPoint) -> bool:
    """ncu profiled at least one kernel of the call. A device-to-device `copy_` is a driver memcpy that
    ncu does not profile (kernel_count 0: the H100 calibration of 2026-12-07); its zero counts would
    price 2 GiB of traffic at nothing, so it has no counters prediction and is left out of that fit."""
    return bool(p.counters) and p.counters.get("kernel_count", 1.0) > 0


# Which points a model is fitted on and predicts (_HAS_INPUTS), and which points must have been
# measured for the model to be fitted at all (_MEASURED: ncu ran over every point).
_HAS_INPUTS: dict[str, Callable[[FitPoint], bool]] = {
    "calibrated": lambda p: True, "activity": lambda p: bool(p.activity), "counters": _counted}
_MEASURED: dict[str, Callable[[FitPoint], bool]] = {**_HAS_INPUTS, "counters": lambda p: bool(p.counters)}
NOT_COUNTED_NOTE = "ncu profiled no kernel of this call (a driver memcpy): no counters prediction"


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
    counters_j: float | None = None  # absent from fits made before the counters model

    def predicted_j(self, model: str) -> float | None:
        return {"calibrated": self.calibrated_j, "activity": self.activity_j, "counters": self.counters_j}[model]

    def ratio(self, model: str) -> float | None:
        """measured / predicted by `model` (None when it could not predict this kernel)."""
        pred = self.predicted_j(model)
        return self.measured_j / pred if pred else None

    @property
    def calibrated_ratio(self) -> float | None:
        return self.ratio("calibrated")

    @property
    def activity_ratio(self) -> float | None:
        return self.ratio("activity")

    @property
    def counters_ratio(self) -> float | None:
        return self.ratio("counters")


@dataclass(frozen=True)
class EnergyFit:
    """The fitted models of one GPU, the points they came from, and how well they predict."""

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
    counters: LinearFit | None = None   # fitted when every point carries ncu counts

    def model(self, name: str) -> LinearFit | None:
        return {"calibrated": self.calibrated, "activity": self.activity, "counters": self.counters}[name]

    def _total(self, dyn: float | None, time_s: float, idle_power_w: float | None) -> float | None:
        idle = self.median_idle_w if idle_power_w is None else idle_power_w
        return None if dyn is None else at_power_limit(idle * time_s + dyn, time_s, self.power_limit_w)

    def predict_calibrated_j(self, *, flops_by_dtype: dict[str, float], bytes: float, time_s: float,
                             idle_power_w: float | None = None) -> float | None:
        dyn = self.calibrated.predict_dynamic_j(calibrated_features(flops_by_dtype, bytes, time_s))
        return self._total(dyn, time_s, idle_power_w)

    def predict_activity_j(self, *, activity: dict[str, float], time_s: float,
                           idle_power_w: float | None = None) -> float | None:
        if self.activity is None:
            return None
        return self._total(self.activity.predict_dynamic_j(activity_features(activity, time_s)), time_s,
                           idle_power_w)

    def predict_counters_j(self, *, counters: dict[str, float], time_s: float,
                           idle_power_w: float | None = None) -> float | None:
        if self.counters is None:
            return None
        return self._total(self.counters.predict_dynamic_j(counter_features(counters, time_s)), time_s,
                           idle_power_w)

    def held_out(self) -> tuple[HeldOut, ...]:
        return self.leave_one_out + self.not_fitted

    def worst_held_out_error_pct(self, model: str = "calibrated") -> float | None:
        """Largest |measured / predicted - 1| in %, over every held-out kernel the model could predict."""
        ratios = [r for r in (h.ratio(model) for h in self.held_out()) if r is not None]
        return max(100 * abs(r - 1) for r in ratios) if ratios else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("leave_one_out", "not_fitted"):
            for h, row in zip(getattr(self, key), d[key]):
                for model in MODELS:
                    row[f"{model}_ratio"] = h.ratio(model)
        d["kind"] = "energy_fit"
        d["version"] = 1
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "EnergyFit":
        def held(rows):
            return tuple(HeldOut(**{k: r[k] for k in HeldOut.__dataclass_fields__ if k in r}) for r in rows)

        def linear(key):
            return LinearFit.from_json(d[key]) if d.get(key) else None

        return cls(gpu_name=d["gpu_name"], gpu_uuid=d.get("gpu_uuid"), driver_version=d.get("driver_version"),
                   calibrated=LinearFit.from_json(d["calibrated"]), activity=linear("activity"),
                   basis=ActivityBasis.from_json(d["basis"]) if d.get("basis") else None,
                   points=tuple(FitPoint.from_json(p) for p in d["points"]),
                   leave_one_out=held(d.get("leave_one_out", ())), not_fitted=held(d.get("not_fitted", ())),
                   median_idle_w=float(d["median_idle_w"]), created=d.get("created", ""),
                   source=d.get("source", ""), skipped=tuple(d.get("skipped", ())),
                   power_limit_w=d.get("power_limit_w"),  # absent from fits made before the cap
                   counters=linear("counters"))


def at_power_limit(energy_j: float, time_s: float, power_limit_w: float | None) -> float:
    """min(energy_j, power_limit_w x time_s): the limiter holds average power at or under the limit."""
    return energy_j if not power_limit_w else min(energy_j, power_limit_w * time_s)


def _predict(fits: dict[str, LinearFit | None], p: FitPoint, power_limit_w: float | None
             ) -> tuple[dict[str, float | None], str]:
    """Each model's prediction for `p` (None where a model is missing or lacks a coefficient p needs),
    and which of them the power limit capped, with the power their sums gave."""
    out: dict[str, float | None] = {}
    over: list[str] = []
    for model in MODELS:
        lf = fits.get(model)
        dyn = lf.predict_dynamic_j(_FEATURIZE[model](p)) if lf is not None and _HAS_INPUTS[model](p) else None
        if dyn is None:
            out[model] = None
            continue
        if power_limit_w and p.idle_power_w + dyn / p.time_s > power_limit_w:
            over.append(f"{model} sum {p.idle_power_w + dyn / p.time_s:.0f} W")
        out[model] = at_power_limit(p.idle_power_w * p.time_s + dyn, p.time_s, power_limit_w)
    return out, (f"capped at the {power_limit_w:.0f} W power limit ({', '.join(over)})" if over else "")


def _fits(points: Sequence[FitPoint], models: Sequence[str]) -> dict[str, LinearFit | None]:
    return {m: _fit_points([p for p in points if _HAS_INPUTS[m](p)], _FEATURIZE[m]) for m in models}


def fit_energy(points: Sequence[FitPoint], *, gpu_name: str, gpu_uuid: str | None = None,
               driver_version: str | None = None, basis: ActivityBasis | None = None,
               subjects: Sequence[FitPoint] = (), created: str = "", source: str = "",
               skipped: Sequence[str] = (), power_limit_w: float | None = None) -> EnergyFit:
    """Fit the models over `points`, predict each point with fits made without it, and predict
    `subjects` (kernels the fits never see). The activity model is fitted only when every point
    carries activity fractions, the counters model only when ncu ran over every point (and over the
    points where it profiled a kernel: see _counted).
    With `power_limit_w`, every prediction is capped at it x time."""
    if len({p.name for p in points}) != len(points):
        raise ValueError("microbenchmark names must be unique")
    models = [m for m in MODELS if points and all(_MEASURED[m](p) for p in points)]
    full = _fits(points, models)
    loo: list[HeldOut] = []
    for i, p in enumerate(points):
        rest = [q for j, q in enumerate(points) if j != i]
        notes: list[str] = []
        try:
            fits_i: dict[str, LinearFit | None] = _fits(rest, models)
        except ValueError as exc:  # too few points left for the coefficients
            notes.append(str(exc))
            fits_i = {}
        pred, capped = _predict(fits_i, p, power_limit_w)
        if fits_i and pred["calibrated"] is None:
            notes.append("the only point with its FLOP dtype: no e_flop for it once it is left out")
        if "counters" in models and not _counted(p):
            notes.append(NOT_COUNTED_NOTE)
        if capped:
            notes.append(capped)
        loo.append(HeldOut(p.name, p.kind, "leave_one_out", p.energy_j, pred["calibrated"], pred["activity"],
                           "; ".join(notes), counters_j=pred["counters"]))
    held = []
    for s in subjects:
        pred, capped = _predict(full, s, power_limit_w)
        held.append(HeldOut(s.name, s.kind, "not_fitted", s.energy_j, pred["calibrated"], pred["activity"],
                            capped if pred["calibrated"] is not None
                            else "its FLOP dtype is not among the microbenchmarks'", counters_j=pred["counters"]))
    idles = sorted(p.idle_power_w for p in points)
    return EnergyFit(gpu_name=gpu_name, gpu_uuid=gpu_uuid, driver_version=driver_version,
                     calibrated=full["calibrated"], activity=full.get("activity"), basis=basis, points=tuple(points),
                     leave_one_out=tuple(loo), not_fitted=tuple(held), median_idle_w=float(idles[len(idles) // 2]),
                     created=created, source=source, skipped=tuple(skipped), power_limit_w=power_limit_w,
                     counters=full.get("counters"))
