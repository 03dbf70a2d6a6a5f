"""Energy estimates to set beside a measurement: each a different quantity, for a different use.

For one call of a workload of `flops` FLOPs (dtype `dtype`) moving at least `min_bytes` bytes:
- paper:        TDP / peak FLOP/s x FLOPs. Fernandez et al. (2025)'s "theoretical" energy, for
                comparing with their table. Their peak was the datasheet's headline figure (the
                A6000's 309.7 TFLOP/s is "with sparsity"; dense 154.8), so the default convention
                is "headline"; "dense" is offered. Every figure says which it used.
- roofline:     TDP x max(FLOPs / dense peak, bytes / bandwidth): the card at its limit for the
                shortest time the work could take. A floor-ish figure that ignores measured time.
- utilization:  TDP x measured time x NVML's GPU utilization over the measurement, as carbon
                calculators (CodeCarbon-style) and papers use the word: the share of time some
                kernel ran, whatever it did.
- activity:     idle power x time plus fitted powers x measured activity (tensor-pipe, FMA-pipe and
                DRAM fractions) x time (kernelprof.estimates.energy_fit): what the card's activity predicts.
- calibrated:   idle power x time + e_flop[dtype] x FLOPs + e_byte x bytes + busy power x time,
                least-squares over this card's microbenchmarks (kernelprof.estimates.energy_fit): what this
                card's measured energy per unit of work predicts.
The first three need only a datasheet; the last two a `kernelprof calibrate` run on the same card.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kernelprof.estimates.datasheets import PEAK_CONVENTIONS, Datasheet, normalize_dtype

if TYPE_CHECKING:
    from kernelprof.estimates.energy_fit import EnergyFit

PJ = 1e-12
ESTIMATE_NAMES = ("paper", "roofline", "utilization", "activity", "calibrated")
CONVENTION_LABELS = {"headline": "headline peak, the datasheet's with-sparsity figure (the paper's convention)",
                     "dense": "dense peak"}


@dataclass(frozen=True)
class Estimate:
    """One estimate of a workload's energy per call, and measured / estimate."""

    name: str  # one of ESTIMATE_NAMES
    energy_j: float | None
    ratio: float | None  # measured / estimate; > 1 means the measurement used more than estimated
    formula: str
    note: str = ""
    convention: str = ""  # the peak convention ("headline" | "dense") where a peak enters


def paper_estimate_j(flops: float, dtype: str, sheet: Datasheet | None,
                     convention: str = "headline") -> float | None:
    """TDP / peak FLOP/s x FLOPs, the paper's theoretical energy; None without a datasheet peak.

    The one implementation: kernel estimates, LLM phases and binned workloads all call it."""
    if convention not in PEAK_CONVENTIONS:
        raise ValueError(f"unknown peak convention {convention!r}; expected one of {PEAK_CONVENTIONS}")
    peak = sheet.peak_for(dtype, convention) if sheet is not None else None
    return sheet.tdp_w / peak * flops if sheet is not None and peak else None


def roofline_time_s(flops: float, min_bytes: float, peak_flop_s: float | None, bandwidth_bytes_s: float) -> float:
    """The larger of compute time at peak and transfer time at peak bandwidth."""
    t_compute = flops / peak_flop_s if peak_flop_s else 0.0
    return max(t_compute, min_bytes / bandwidth_bytes_s)


def _ratio(measured: float | None, estimate: float | None) -> float | None:
    if measured is None or not estimate:
        return None
    return measured / estimate


def estimate_all(*, flops: float, min_bytes: float, dtype: str, time_s: float, energy_j: float | None,
                 sheet: Datasheet | None, model: "EnergyFit | None" = None, idle_power_w: float | None = None,
                 nvml_utilization_pct: float | None = None, paper_convention: str = "headline",
                 activity: dict[str, float] | None = None) -> list[Estimate]:
    """Every estimate for one call of a workload (ESTIMATE_NAMES, in that order), with measured / estimate.

    `idle_power_w` is the idle measured beside the call (the fitted models add their dynamic part
    to it; without it they use the calibration's median idle); `nvml_utilization_pct` is NVML's GPU
    utilization averaged over the measurement; `activity` the kernel's pipe fractions from ncu
    (kernelprof.estimates.energy_fit.activity_from_counters), else they come from achieved rates."""
    out: list[Estimate] = []
    conv = paper_convention
    if sheet is None:
        note = "no datasheet entry for this GPU"
        out.append(Estimate("paper", None, None, "TDP / peak FLOP/s x FLOPs", note, conv))
        out.append(Estimate("roofline", None, None, "TDP x max(FLOPs / peak, bytes / bandwidth)", note, "dense"))
        out.append(Estimate("utilization", None, None, "TDP x time x NVML GPU utilization", note))
    else:
        tdp = sheet.tdp_w
        peak = sheet.peak_for(dtype, conv)
        formula = (f"TDP / peak FLOP/s x FLOPs ({tdp:.0f} W / {peak / 1e12:.1f} TFLOP/s {dtype}, {conv})"
                   if peak else "TDP / peak FLOP/s x FLOPs")
        paper = paper_estimate_j(flops, dtype, sheet, conv)
        if paper is None:
            out.append(Estimate("paper", None, None, formula, f"no {dtype} peak on the datasheet", conv))
        else:
            note = CONVENTION_LABELS[conv] + ("; counts compute only: 0 J for a kernel with no FLOPs" if not flops else "")
            out.append(Estimate("paper", paper, _ratio(energy_j, paper), formula, note, conv))
        dense = sheet.peak_flop_s(dtype)
        roof = tdp * roofline_time_s(flops, min_bytes, dense, sheet.memory_bandwidth_bytes_s)
        out.append(Estimate("roofline", roof, _ratio(energy_j, roof), "TDP x max(FLOPs / peak, bytes / bandwidth)",
                            "datasheet dense peak and bandwidth; ignores the measured time", "dense"))
        if nvml_utilization_pct is None:
            out.append(Estimate("utilization", None, None, "TDP x time x NVML GPU utilization",
                                "NVML utilization was not recorded with this measurement"))
        else:
            util = tdp * time_s * nvml_utilization_pct / 100
            out.append(Estimate("utilization", util, _ratio(energy_j, util), "TDP x time x NVML GPU utilization",
                                f"NVML GPU utilization {nvml_utilization_pct:.0f}% (time share with a kernel "
                                "running, not FLOP utilization)"))
    out += fitted_estimates(flops=flops, min_bytes=min_bytes, dtype=dtype, time_s=time_s, energy_j=energy_j,
                            model=model, idle_power_w=idle_power_w, activity=activity)
    return out


def fitted_estimates(*, flops: float, min_bytes: float, dtype: str, time_s: float, energy_j: float | None,
                     model: "EnergyFit | None", idle_power_w: float | None = None,
                     activity: dict[str, float] | None = None) -> list[Estimate]:
    """The activity and calibrated estimates from this card's fit (kernelprof.estimates.energy_fit)."""
    act_formula = "P_idle x t + (tensor_w x tensor + fma_w x FMA + dram_w x DRAM fraction + busy_w) x t"
    cal_formula = "P_idle x t + e_flop x FLOPs + e_byte x bytes + busy_w x t"
    if model is None:
        why = "no calibration for this GPU: run `kernelprof calibrate`"
        return [Estimate("activity", None, None, act_formula, why), Estimate("calibrated", None, None, cal_formula, why)]
    from kernelprof.estimates.energy_fit import achieved_activity

    key = normalize_dtype(dtype)
    counts = {key: flops} if flops else {}
    fitted_on = f"fitted on {len(model.points)} microbenchmarks ({model.source or 'this GPU'})"
    idle_note = "" if idle_power_w is not None else f"; P_idle {model.median_idle_w:.0f} W from the calibration"

    def cap_note(pred: float | None) -> str:  # the fit caps a sum above the board's power limit x time
        limit = model.power_limit_w
        capped = bool(limit and pred and pred >= limit * time_s * (1 - 1e-9))
        return f"; capped at the {limit:.0f} W power limit" if capped else ""

    out = []
    if model.activity is None or model.basis is None:
        out.append(Estimate("activity", None, None, act_formula, "the calibration has no activity fit"))
    else:
        # With achieved rates the fractions are counts / time: the activity model then differs from the
        # calibrated one only by its tied tensor coefficient. ncu's pipe counters are new information.
        frac = activity if activity is not None else achieved_activity(counts, min_bytes, time_s, model.basis)
        act = model.predict_activity_j(activity=frac, time_s=time_s, idle_power_w=idle_power_w)
        out.append(Estimate("activity", act, _ratio(energy_j, act), act_formula,
                            f"activity from {'ncu counters' if activity is not None else 'achieved rates'}: tensor {frac['tensor']:.3f}, FMA {frac['fma']:.3f}, "
                            f"DRAM {frac['dram']:.3f} of copy bandwidth; {fitted_on}{idle_note}{cap_note(act)}", "dense"))
    cal = model.predict_calibrated_j(flops_by_dtype=counts, bytes=min_bytes, time_s=time_s, idle_power_w=idle_power_w)
    out.append(Estimate("calibrated", cal, _ratio(energy_j, cal), cal_formula,
                        (f"{fitted_on}{idle_note}{cap_note(cal)}" if cal is not None
                         else f"the calibration has no {key} FLOP energy")))
    return out


def achieved_fraction(*, flops: float, min_bytes: float, time_s: float, peak_flop_s: float | None,
                      bandwidth_bytes_s: float) -> float:
    """max(achieved FLOP/s / peak, achieved bytes/s / bandwidth): the roofline fraction (roofline time /
    measured time), often called 'utilization', and not an estimate of energy by itself."""
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
