"""Theoretical energy estimates to set beside a measurement, and the calibrated energy model.

For a workload of `flops` FLOPs moving at least `min_bytes` bytes in dtype `dtype`:
- paper:        TDP / peak FLOP/s x FLOPs  (Fernandez et al. 2025's "theoretical" energy)
- roofline:     TDP x max(FLOPs / peak FLOP/s, bytes / peak bandwidth)
- utilization:  TDP x measured time x achieved fraction of peak (the larger of FLOP and byte fractions)
- calibrated:   e_flop[dtype] x FLOPs + e_byte x bytes + P_static x measured time, with coefficients
                fitted on this card by `kernelprof calibrate` (see `fit_energy_model`)
Peaks are the datasheet's (what the papers use); `roofline_fraction` uses measured ceilings when
they exist, since a kernel cannot beat what the card really does.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from kernelprof.estimates.datasheets import Datasheet, normalize_dtype

PJ = 1e-12


@dataclass(frozen=True)
class Estimate:
    """One estimate of a workload's energy per call, and measured / estimate."""

    name: str  # "paper" | "roofline" | "utilization" | "calibrated"
    energy_j: float | None
    ratio: float | None  # measured / estimate; > 1 means the measurement used more than estimated
    formula: str
    note: str = ""


@dataclass(frozen=True)
class EnergyModel:
    """E = sum_dtype e_flop_j[dtype] x FLOPs + e_byte_j x bytes + static_power_w x time, for one GPU."""

    gpu_name: str
    gpu_uuid: str | None
    e_flop_j: dict[str, float]  # joules per FLOP by dtype key ("bf16", "fp16", "fp32", ...)
    e_byte_j: float             # joules per byte moved to or from device memory
    static_power_w: float       # power of the GPU busy-but-idle: right-after-work idle
    fitted_from: tuple[dict[str, Any], ...] = field(default=())
    residuals: dict[str, float] = field(default_factory=dict)  # per microbenchmark, (model - measured) / measured

    def predict_j(self, *, flops: float, min_bytes: float, time_s: float, dtype: str) -> float | None:
        key = normalize_dtype(dtype)
        e_flop = self.e_flop_j.get(key)
        if e_flop is None and flops:
            return None
        return (e_flop or 0.0) * flops + self.e_byte_j * min_bytes + self.static_power_w * time_s

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["fitted_from"] = list(self.fitted_from)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "EnergyModel":
        return cls(gpu_name=d["gpu_name"], gpu_uuid=d.get("gpu_uuid"), e_flop_j=dict(d["e_flop_j"]),
                   e_byte_j=float(d["e_byte_j"]), static_power_w=float(d["static_power_w"]),
                   fitted_from=tuple(d.get("fitted_from", ())), residuals=dict(d.get("residuals", {})))


@dataclass(frozen=True)
class Microbenchmark:
    """One calibration point: energy per call of a kernel with known FLOPs and bytes."""

    name: str
    dtype: str | None  # dtype of its FLOPs; None for a pure streaming kernel
    flops: float
    min_bytes: float
    time_s: float
    energy_j: float


def fit_energy_model(points: Sequence[Microbenchmark], *, static_power_w: float, gpu_name: str,
                     gpu_uuid: str | None = None) -> EnergyModel:
    """Fit e_byte from the byte-only points, then e_flop per dtype from the rest.

    Sequential rather than one joint least-squares fit: the streaming kernel isolates e_byte, and
    each compute-bound kernel then gives its dtype's e_flop after its (small) byte energy is taken
    off. Every point's dynamic energy is E - static_power_w x time. With several points of one
    kind, their coefficients are averaged weighted by their work.
    """
    streams = [p for p in points if not p.flops]
    if not streams:
        raise ValueError("calibration needs at least one byte-only (streaming) microbenchmark")
    dyn = {p.name: p.energy_j - static_power_w * p.time_s for p in points}
    total_bytes = sum(p.min_bytes for p in streams)
    e_byte = max(0.0, sum(dyn[p.name] for p in streams) / total_bytes)
    e_flop: dict[str, float] = {}
    by_dtype: dict[str, list[Microbenchmark]] = {}
    for p in points:
        if p.flops:
            if p.dtype is None:
                raise ValueError(f"microbenchmark {p.name} has FLOPs but no dtype")
            by_dtype.setdefault(normalize_dtype(p.dtype), []).append(p)
    for key, pts in by_dtype.items():
        num = sum(dyn[p.name] - e_byte * p.min_bytes for p in pts)
        e_flop[key] = max(0.0, num / sum(p.flops for p in pts))
    model = EnergyModel(gpu_name=gpu_name, gpu_uuid=gpu_uuid, e_flop_j=e_flop, e_byte_j=e_byte,
                        static_power_w=static_power_w, fitted_from=tuple(asdict(p) for p in points))
    residuals = {}
    for p in points:
        pred = model.predict_j(flops=p.flops, min_bytes=p.min_bytes, time_s=p.time_s, dtype=p.dtype or "fp32")
        residuals[p.name] = (pred - p.energy_j) / p.energy_j if pred is not None and p.energy_j else float("nan")
    return EnergyModel(**{**asdict(model), "fitted_from": model.fitted_from, "residuals": residuals})


def roofline_time_s(flops: float, min_bytes: float, peak_flop_s: float | None, bandwidth_bytes_s: float) -> float:
    """The larger of compute time at peak and transfer time at peak bandwidth."""
    t_compute = flops / peak_flop_s if peak_flop_s else 0.0
    return max(t_compute, min_bytes / bandwidth_bytes_s)


def _ratio(measured: float | None, estimate: float | None) -> float | None:
    if measured is None or not estimate:
        return None
    return measured / estimate


def estimate_all(*, flops: float, min_bytes: float, dtype: str, time_s: float, energy_j: float | None,
                 sheet: Datasheet | None, model: EnergyModel | None = None) -> list[Estimate]:
    """Every estimate for one call of a workload, each with measured / estimate."""
    out: list[Estimate] = []
    if sheet is None:
        note = "no datasheet entry for this GPU"
        for name in ("paper", "roofline", "utilization"):
            out.append(Estimate(name, None, None, "", note))
    else:
        peak = sheet.peak_flop_s(dtype)
        tdp = sheet.tdp_w
        bw = sheet.memory_bandwidth_bytes_s
        if peak:
            paper = tdp / peak * flops
            out.append(Estimate("paper", paper, _ratio(energy_j, paper), "TDP / peak FLOP/s x FLOPs",
                                "counts compute only: 0 J for a kernel with no FLOPs" if not flops else ""))
        else:
            out.append(Estimate("paper", None, None, "TDP / peak FLOP/s x FLOPs", f"no {dtype} peak on the datasheet"))
        t_roof = roofline_time_s(flops, min_bytes, peak, bw)
        roof = tdp * t_roof
        out.append(Estimate("roofline", roof, _ratio(energy_j, roof), "TDP x max(FLOPs/peak, bytes/bandwidth)"))
        frac = achieved_fraction(flops=flops, min_bytes=min_bytes, time_s=time_s, peak_flop_s=peak,
                                 bandwidth_bytes_s=bw)
        util = tdp * time_s * frac
        out.append(Estimate("utilization", util, _ratio(energy_j, util),
                            "TDP x time x achieved fraction of peak",
                            f"achieved fraction {frac:.3f} of datasheet peak"))
    if model is None:
        out.append(Estimate("calibrated", None, None, "e_flop x FLOPs + e_byte x bytes + P_static x time",
                            "no calibration for this GPU: run `kernelprof calibrate`"))
    else:
        cal = model.predict_j(flops=flops, min_bytes=min_bytes, time_s=time_s, dtype=dtype)
        out.append(Estimate("calibrated", cal, _ratio(energy_j, cal),
                            "e_flop x FLOPs + e_byte x bytes + P_static x time",
                            "" if cal is not None else f"calibration has no {dtype} FLOP energy"))
    return out


def achieved_fraction(*, flops: float, min_bytes: float, time_s: float, peak_flop_s: float | None,
                      bandwidth_bytes_s: float) -> float:
    """max(achieved FLOP/s / peak, achieved bytes/s / bandwidth), the usual 'utilization'."""
    if time_s <= 0:
        raise ValueError(f"time_s must be positive, got {time_s}")
    f = flops / time_s / peak_flop_s if peak_flop_s else 0.0
    b = min_bytes / time_s / bandwidth_bytes_s
    return max(f, b)


def per_unit_energy(energy_j: float | None, *, flops: float, min_bytes: float) -> dict[str, float | None]:
    """Achieved pJ per FLOP and pJ per byte (whole energy over each count; None where count is 0)."""
    if energy_j is None:
        return {"pj_per_flop": None, "pj_per_byte": None}
    return {"pj_per_flop": energy_j / flops / PJ if flops else None,
            "pj_per_byte": energy_j / min_bytes / PJ if min_bytes else None}
