"""One op/variant/shape/dtype measured for energy, with every estimate beside it.

This is the one implementation behind `kernelprof kernel`, `sweep` and `compare`: it builds the
op's inputs from the kernels registry, runs `measure_kernel`, and attaches the estimates, the
achieved rates and the roofline fraction. Its payload is what run files and sweep lines hold.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kernelprof.errors import UsageError
from kernelprof.estimates.energy_fit import EnergyFit
from kernelprof.estimates.energy import Estimate, estimate_all, per_unit_energy, roofline_time_s
from kernelprof.methods.ops import resolve_kernel
from kernelprof.methods.steady_state import KernelMeasurement, MeasureConfig, measure_kernel
from kernelprof.estimates.datasheets import datasheet_for, normalize_dtype


@dataclass(frozen=True)
class KernelEnergy:
    """A measurement of one kernel call plus what it is compared with."""

    op: str
    variant: str
    shape: str
    dtype: str
    gpu_name: str
    measurement: dict[str, Any]  # KernelMeasurement as JSON (see kernelprof.methods.steady_state)
    estimates: tuple[Estimate, ...]
    roofline_time_s: float | None
    roofline_fraction: float | None  # roofline time / measured time (1 = at the roofline)
    roofline_basis: str
    pj_per_flop: float | None
    pj_per_byte: float | None
    j_per_tflop: float | None

    @property
    def m(self) -> dict[str, Any]:
        return self.measurement

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["estimates"] = [asdict(e) for e in self.estimates]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "KernelEnergy":
        d = dict(d)
        d["estimates"] = tuple(Estimate(**e) for e in d["estimates"])
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def _ceilings_for(uuid: str | None, driver: str | None):
    from kernelprof.methods.ceilings import load_cached_ceilings

    return load_cached_ceilings(uuid, driver)


def _energy_model_for(uuid: str | None, driver: str | None) -> EnergyFit | None:
    """This GPU's cached `kernelprof calibrate` fit (kernelprof.estimates.energy_fit), or None."""
    from kernelprof.cache import cache_path, read_cached

    doc = read_cached(cache_path("energy-fit", uuid, driver))
    try:
        return EnergyFit.from_json(doc) if doc and doc.get("kind") == "energy_fit" else None
    except (KeyError, TypeError, ValueError):
        return None  # a cache is never authoritative


def describe(meas: KernelMeasurement, *, op: str, variant: str, shape: str, dtype: str, gpu_name: str,
             uuid: str | None = None, driver: str | None = None, paper_convention: str = "headline") -> KernelEnergy:
    """Attach estimates, rates and the roofline fraction to a measurement."""
    sheet = datasheet_for(gpu_name)
    model = _energy_model_for(uuid, driver)
    # nvml_utilization_pct: NVML GPU utilization over the settled window, where measure_kernel records it.
    ests = estimate_all(flops=meas.flops, min_bytes=meas.min_bytes, dtype=dtype, time_s=meas.time_per_call_s,
                        energy_j=meas.energy_per_call_j, sheet=sheet, model=model, idle_power_w=meas.idle_power_w,
                        nvml_utilization_pct=getattr(meas, "nvml_utilization_pct", None),
                        paper_convention=paper_convention)
    ceil = _ceilings_for(uuid, driver)
    roof_t = None
    basis = "no datasheet entry and no measured ceilings"
    key = normalize_dtype(dtype)
    if ceil is not None and key in ("bf16", "fp16"):
        rate = ceil.bf16_matmul_flop_s if key == "bf16" else ceil.fp16_matmul_flop_s
        roof_t = roofline_time_s(meas.flops, meas.min_bytes, rate, ceil.copy_bytes_s)
        basis = f"measured ceilings ({key} matmul, copy bandwidth) of this GPU"
    elif sheet is not None:
        roof_t = roofline_time_s(meas.flops, meas.min_bytes, sheet.peak_flop_s(dtype), sheet.memory_bandwidth_bytes_s)
        basis = "datasheet peaks"
    units = per_unit_energy(meas.energy_per_call_j, flops=meas.flops, min_bytes=meas.min_bytes)
    jpt = meas.energy_per_call_j / (meas.flops / 1e12) if meas.energy_per_call_j and meas.flops else None
    return KernelEnergy(op=op, variant=variant, shape=shape, dtype=key, gpu_name=gpu_name,
                        measurement=_measurement_json(meas), estimates=tuple(ests), roofline_time_s=roof_t,
                        roofline_fraction=None if roof_t is None else roof_t / meas.time_per_call_s,
                        roofline_basis=basis, pj_per_flop=units["pj_per_flop"], pj_per_byte=units["pj_per_byte"],
                        j_per_tflop=jpt)


def _measurement_json(meas: KernelMeasurement) -> dict[str, Any]:
    from kernelprof.outputs.runfile import to_jsonable

    d = to_jsonable(meas)
    d["achieved_flop_s"] = meas.achieved_flop_s
    d["achieved_bytes_s"] = meas.achieved_bytes_s
    return d


def measure_op(op_name: str, variant: str, shape_text: str | None = None, dtype: str = "bf16", *,
               device: int = 0, config: MeasureConfig | None = None, seed: int = 0,
               paper_convention: str = "headline") -> KernelEnergy:
    """Measure one registered op variant at one shape (the library behind `kernelprof kernel`)."""
    if op_name.startswith("fn:"):  # a user's own case (kernelprof.methods.user_case)
        from kernelprof.methods.user_case import measure_user_op

        return measure_user_op(op_name, variant, shape_text, dtype, device=device, config=config, seed=seed,
                               paper_convention=paper_convention)
    import torch

    from kernelprof.gpu.devices import gpu_facts, require_gpu

    req = resolve_kernel(op_name, variant, shape_text, dtype)  # bad input says so, also without a GPU
    require_gpu("kernelprof kernel")
    op, variant, shape, dt = req.op, req.variant, req.shape, req.torch_dtype
    if dt not in op.dtypes:
        raise UsageError(f"{op.name} does not take {dtype}; it takes {[str(d).replace('torch.', '') for d in op.dtypes]}")
    facts = gpu_facts(device)
    inputs = op.make_inputs(shape, dt, torch.device("cuda", device), seed)
    fn = op.variants[variant]
    meas = measure_kernel(fn, *inputs, flops=op.flops(shape), min_bytes=op.min_bytes(shape, dt), dtype=dtype,
                          name=f"{op.name}/{variant}", device=device, config=config)
    return describe(meas, op=op.name, variant=variant, shape=str(shape), dtype=dtype, gpu_name=facts.name,
                    uuid=facts.uuid, driver=facts.driver_version, paper_convention=paper_convention)


def save_kernel_run(ke: KernelEnergy, out: str | Path | None = None) -> Path:
    """Save a run file of kind "kernel" (default runs/kernel-<op>-<variant>-<time>.json, or
    runs/kernel-fn-<function>-<time>.json for a user's case); returns its path."""
    from kernelprof.outputs.runfile import default_run_path, save_run

    stem = f"kernel-fn-{ke.op.rpartition(':')[2]}" if ke.op.startswith("fn:") else f"kernel-{ke.op}-{ke.variant}"
    path = Path(out) if out else default_run_path(stem)
    save_run(path, "kernel", ke.to_json())
    return path
