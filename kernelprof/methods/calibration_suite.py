"""`kernelprof calibrate`: measure this card's microbenchmarks, fit the energy models, validate them.

The GPU half of kernelprof.estimates.energy_fit. Seventeen microbenchmarks (about 4.5 s each by the
steady-state method; 15 when cupy is missing), chosen to span what kernels do:
- compute-bound: cuBLAS GEMMs in bf16, fp16, fp8 (two sizes) and fp32 on the CUDA cores (two sizes);
- memory-bound: a 1 GiB device copy (the driver's memcpy, and the same traffic by an SM kernel, which
  ncu can count), decode attention at B16 ctx 8192 and B1 ctx 32768 (SDPA);
- mixed: causal attention prefill S4096 (SDPA), small GEMMs (2048^3 bf16 and fp16);
- low utilization: a tiny GEMM (256^3) and a latency-bound decode (B1 ctx 1024), graph-replayed;
plus two FMA-bound cupy kernels when cupy is installed, with nearly static and with switching
operands (kernelprof.methods.calibrate says why both). Each compute dtype has two points so that
leave-one-out can test its coefficient. Three subject kernels (the project's Triton GEMM,
attention and split-K decode) are measured too and never fitted on: the second validation.

The fit and the measurements go to this GPU's cache (used by every later estimate) and, with
`results_dir`, to `calibration-<gpu>.json` in the standard results shape: one case per held-out
kernel and model, `<model>/<kernel>/measured_over_predicted` (calibrated, activity, and counters when
`counters=True` gave every point ncu counts).
"""
from __future__ import annotations

import datetime as _dt
import functools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kernelprof.outputs.benchfile import Case, device_record, write_results
from kernelprof.cache import cache_path, write_cached
from kernelprof.gpu.devices import gpu_facts, require_gpu
from kernelprof.estimates.energy_fit import (MODELS, ActivityBasis, EnergyFit, FitPoint, achieved_activity,
                                             fit_energy)
from kernelprof.errors import MeasurementError
from kernelprof.estimates.datasheets import datasheet_for, normalize_dtype

TARGET_HELD_OUT_PCT = 10.0  # issue 12: every held-out kernel within 10%
COPY_ELEMENTS = 2**28       # fp32: a 1 GiB source, far past L2


@dataclass(frozen=True)
class SuitePoint:
    """One kernel of the calibration run: a registry op (or the copy) at one shape and dtype."""

    name: str
    kind: str      # compute | memory | mixed | low_utilization | subject
    op: str        # gemm | attention | decode | copy | fma
    variant: str
    shape: str
    dtype: str


MICROBENCHMARKS: tuple[SuitePoint, ...] = (
    SuitePoint("gemm-bf16-8192", "compute", "gemm", "cublas", "8192x8192x8192", "bf16"),
    SuitePoint("gemm-fp16-8192", "compute", "gemm", "cublas", "8192x8192x8192", "fp16"),
    SuitePoint("gemm-fp8-8192", "compute", "gemm", "cublas", "8192x8192x8192", "fp8"),
    SuitePoint("gemm-fp8-4096", "compute", "gemm", "cublas", "4096x4096x4096", "fp8"),
    SuitePoint("gemm-fp32-4096", "compute", "gemm", "cublas", "4096x4096x4096", "fp32"),
    SuitePoint("gemm-fp32-2048", "compute", "gemm", "cublas", "2048x2048x2048", "fp32"),
    SuitePoint("copy-1gib", "memory", "copy", "torch", str(COPY_ELEMENTS), "fp32"),  # a driver memcpy
    # The same traffic by an SM kernel (y = -x): ncu profiles no kernel of the memcpy above (H100,
    # 2026-12-07), so only this point gives the counters model DRAM bytes from a pure stream.
    SuitePoint("copy-kernel-1gib", "memory", "copy", "kernel", str(COPY_ELEMENTS), "fp32"),
    SuitePoint("decode-b16-ctx8192", "memory", "decode", "sdpa", "b=16,h=32,kv=8,ctx=8192,d=128", "bf16"),
    SuitePoint("decode-b1-ctx32768", "memory", "decode", "sdpa", "b=1,h=32,kv=8,ctx=32768,d=128", "bf16"),
    SuitePoint("attention-s4096-causal", "mixed", "attention", "sdpa-cudnn", "b=4,h=32,s=4096,d=128,causal", "bf16"),
    SuitePoint("gemm-bf16-2048", "mixed", "gemm", "cublas", "2048x2048x2048", "bf16"),
    SuitePoint("gemm-fp16-2048", "mixed", "gemm", "cublas", "2048x2048x2048", "fp16"),
    SuitePoint("gemm-bf16-256", "low_utilization", "gemm", "cublas", "256x256x256", "bf16"),
    SuitePoint("decode-b1-ctx1024", "low_utilization", "decode", "sdpa", "b=1,h=32,kv=8,ctx=1024,d=128", "bf16"),
    SuitePoint("fma-fp32", "compute", "fma", "cupy", "", "fp32"),  # skipped without cupy
    SuitePoint("fma-fp32-toggle", "compute", "fma", "cupy", "toggle", "fp32"),  # operands switch every FMA
)
SUBJECTS: tuple[SuitePoint, ...] = (
    SuitePoint("gemm-triton-bf16-4096", "subject", "gemm", "triton", "4096x4096x4096", "bf16"),
    SuitePoint("attention-triton-s4096-causal", "subject", "attention", "triton", "b=4,h=32,s=4096,d=128,causal",
               "bf16"),
    SuitePoint("decode-triton-splitk-b16-ctx8192", "subject", "decode", "triton-splitk",
               "b=16,h=32,kv=8,ctx=8192,d=128", "bf16"),
)


@dataclass(frozen=True)
class CalibrationRun:
    """A fit and the measurements behind it (each KernelMeasurement's summary, with its flags)."""

    fit: EnergyFit
    measurements: tuple[dict[str, Any], ...]
    results_path: str | None = None
    counter_notes: tuple[str, ...] = ()  # points ncu gave no counts for, and why


def _build(sp: SuitePoint, device: Any) -> tuple[Callable[..., Any], tuple, float, float]:
    """(fn, args, FLOPs, minimum bytes) of one point, inputs on `device`."""
    import torch

    if sp.op == "copy":
        src = torch.randn(COPY_ELEMENTS, device=device)
        dst = torch.empty_like(src)
        if sp.variant == "kernel":
            return functools.partial(torch.neg, out=dst), (src,), 0.0, 2.0 * 4 * COPY_ELEMENTS
        return dst.copy_, (src,), 0.0, 2.0 * 4 * COPY_ELEMENTS
    if sp.op == "fma":
        from kernelprof.methods.calibrate import fma_microbenchmark

        fn, flops = fma_microbenchmark(device.index or 0, data=sp.shape or "static")
        return fn, (), flops, 0.0
    from kernelprof.methods.ops import resolve_kernel

    req = resolve_kernel(sp.op, sp.variant, sp.shape, sp.dtype)
    op, shape, dt = req.op, req.shape, req.torch_dtype
    inputs = op.make_inputs(shape, dt, device, 0)
    return op.variants[req.variant], tuple(inputs), float(op.flops(shape)), float(op.min_bytes(shape, dt))


def _summary(sp: SuitePoint, m: Any) -> dict[str, Any]:
    return {"name": sp.name, "kind": sp.kind, "op": sp.op, "variant": sp.variant, "shape": sp.shape,
            "dtype": sp.dtype, "time_per_call_s": m.time_per_call_s, "energy_per_call_j": m.energy_per_call_j,
            "energy_ci_j": m.energy_ci_j, "mean_power_w": m.mean_power_w, "idle_power_w": m.idle_power_w,
            "flops": m.flops, "min_bytes": m.min_bytes, "calls_per_launch": m.calls_per_launch,
            "sm_clock_mhz": m.sm_clock_mhz, "nvml_utilization_pct": getattr(m, "nvml_utilization_pct", None),
            "flags": [f.code for f in m.flags], "wall_s": m.wall_s}


def measure_suite(points: tuple[SuitePoint, ...], *, device: int = 0, max_wall_s: float = 8.0,
                  progress: Callable[[str], None] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Measure each point by the steady-state method; returns (summaries, skipped-with-why)."""
    import torch

    from kernelprof.methods.steady_state import MeasureConfig, measure_kernel

    say = progress or (lambda _msg: None)
    cfg = MeasureConfig(max_wall_s=max_wall_s)
    dev = torch.device("cuda", device)
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 GEMMs on the CUDA cores, as their FLOPs are counted
    try:
        for sp in points:
            say(sp.name)
            try:
                fn, args, flops, min_bytes = _build(sp, dev)
                m = measure_kernel(fn, *args, flops=flops, min_bytes=min_bytes, dtype=sp.dtype, name=sp.name,
                                   device=device, config=cfg)
            except ImportError as exc:
                skipped.append(f"{sp.name}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - one point failing (unsupported backend, OOM) must not lose the rest
                skipped.append(f"{sp.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                continue
            finally:
                torch.cuda.empty_cache()
            if m.energy_per_call_j is None:
                skipped.append(f"{sp.name}: no energy measured")
                continue
            out.append(_summary(sp, m))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return out, skipped


def activity_basis(summaries: list[dict[str, Any]], gpu_name: str) -> ActivityBasis:
    """Dense datasheet peaks, and the copy bandwidth this run measured (else the datasheet's)."""
    sheet = datasheet_for(gpu_name)
    peaks = {}
    if sheet is not None:
        for key in ("bf16", "fp16", "fp8", "tf32", "fp32", "fp64"):
            p = sheet.peak_flop_s(key)
            if p:
                peaks[key] = p
    copies = sorted((s for s in summaries if s["op"] == "copy"), key=lambda s: s.get("variant") != "torch")
    if copies:
        c = copies[0]
        return ActivityBasis(peaks, c["min_bytes"] / c["time_per_call_s"],
                             f"dense peaks of the {sheet.model if sheet else 'unknown'} datasheet; copy bandwidth "
                             f"measured by {c['name']} in this run")
    if sheet is None:
        raise MeasurementError("no copy measured and no datasheet entry: no basis for activity fractions")
    return ActivityBasis(peaks, sheet.memory_bandwidth_bytes_s,
                         f"dense peaks and bandwidth of the {sheet.model} datasheet (no copy was measured)")


def fit_points(summaries: list[dict[str, Any]], basis: ActivityBasis, *, source: str) -> list[FitPoint]:
    """Measurement summaries as fit points, with activity fractions from achieved rates."""
    idles = [s["idle_power_w"] for s in summaries if s["idle_power_w"] is not None]
    fallback = statistics.median(idles) if idles else None
    out = []
    for s in summaries:
        idle = s["idle_power_w"] if s["idle_power_w"] is not None else fallback
        if idle is None:
            raise MeasurementError("no idle power was measured beside any point")
        flops = {normalize_dtype(s["dtype"]): s["flops"]} if s["flops"] else {}
        out.append(FitPoint(name=s["name"], kind=s["kind"], flops_by_dtype=flops, bytes=s["min_bytes"],
                            time_s=s["time_per_call_s"], energy_j=s["energy_per_call_j"], idle_power_w=idle,
                            activity=achieved_activity(flops, s["min_bytes"], s["time_per_call_s"], basis),
                            energy_ci_j=s.get("energy_ci_j"), nvml_utilization_pct=s.get("nvml_utilization_pct"),
                            source=source, counters=dict(s.get("counters") or {})))
    return out


def fit_from_summaries(summaries: list[dict[str, Any]], *, gpu_name: str, gpu_uuid: str | None = None,
                       driver_version: str | None = None, source: str = "", skipped: tuple[str, ...] = (),
                       created: str = "", power_limit_w: float | None = None) -> EnergyFit:
    """The pure half: fit both models over the microbenchmarks, validate on the subjects.
    `power_limit_w` (the board's, as recorded) caps every prediction at it x time."""
    basis = activity_basis(summaries, gpu_name)
    micro = fit_points([s for s in summaries if s["kind"] != "subject"], basis, source=source)
    subj = fit_points([s for s in summaries if s["kind"] == "subject"], basis, source=source)
    return fit_energy(micro, gpu_name=gpu_name, gpu_uuid=gpu_uuid, driver_version=driver_version, basis=basis,
                      subjects=subj, created=created, source=source, skipped=skipped, power_limit_w=power_limit_w)


def result_cases(fit: EnergyFit) -> list[Case]:
    """Results-file rows: each held-out kernel's measured / predicted, each coefficient, the worst error."""
    cases = []
    for h in fit.held_out():
        for model in MODELS:
            ratio = h.ratio(model)
            if ratio is not None:
                cases.append(Case(f"{model}/{h.name}/measured_over_predicted", "ratio", ratio,
                                  extra={"held_out": h.how, "kind": h.kind, "measured_j": h.measured_j,
                                         "predicted_j": h.predicted_j(model)}))
    for model in MODELS:
        lf = fit.model(model)
        if lf is None:
            continue
        for k, c in lf.coefficients.items():
            cases.append(Case(f"{model}/coefficient/{k}", "si", c,
                              extra={"standard_error": lf.standard_errors.get(k), "at_bound": k in lf.at_bound}))
        worst = fit.worst_held_out_error_pct(model)
        if worst is not None:
            cases.append(Case(f"{model}/worst_held_out_error_pct", "error_pct", worst,
                              extra={"target_pct": TARGET_HELD_OUT_PCT, "meets_target": worst <= TARGET_HELD_OUT_PCT}))
    return cases


def calibrate(device: int = 0, *, max_wall_s: float = 8.0, subjects: bool = True,
              results_dir: str | Path | None = None, only: tuple[str, ...] | None = None,
              progress: Callable[[str], None] | None = None, counters: bool = False,
              ncu: str | None = None) -> CalibrationRun:
    """Measure, fit, validate; cache the fit for this GPU; write the results file if `results_dir`.
    With `counters`, every measured point is also profiled once under ncu
    (kernelprof.methods.calibration_counters) and the counters model is fitted too."""
    require_gpu("kernelprof calibrate")
    facts = gpu_facts(device)
    points = MICROBENCHMARKS + (SUBJECTS if subjects else ())
    if only:
        points = tuple(p for p in points if p.name in only)
    summaries, skipped = measure_suite(points, device=device, max_wall_s=max_wall_s, progress=progress)
    counter_notes: list[str] = []
    if counters and summaries and results_dir is not None:
        # The energies first: ncu takes minutes and a time limit may stop it; `calibrate --from` refits this.
        _fit_and_write(summaries, skipped, facts, device, results_dir,
                       ["counters not profiled yet: this file is overwritten when ncu finishes"])
    if counters and summaries:
        from kernelprof.estimates.counters.ncu import NcuError
        from kernelprof.methods.calibration_counters import suite_counters

        try:
            counts, counter_notes = suite_counters([s["name"] for s in summaries], device=device, ncu=ncu,
                                                   progress=progress)
        except NcuError as exc:  # no ncu or no counter permission: keep the measured energies and fits
            counts, counter_notes = {}, [f"no counters model: {exc}"]
        for s in summaries:
            if s["name"] in counts:
                s["counters"] = counts[s["name"]]
    fit, path = _fit_and_write(summaries, skipped, facts, device, results_dir, counter_notes)
    write_cached(cache_path("energy-fit", facts.uuid, facts.driver_version), fit.to_json())
    return CalibrationRun(fit, tuple(summaries), path, tuple(counter_notes))


def _fit_and_write(summaries: list[dict[str, Any]], skipped: list[str], facts: Any, device: int,
                   results_dir: str | Path | None, counter_notes: list[str]) -> tuple[Any, str | None]:
    """Fit the models; write calibration-<gpu>.json into `results_dir` if given."""
    from kernelprof.outputs.environment import git_revision

    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    source = f"measured by kernelprof calibrate on {facts.name} at {git_revision() or 'unknown revision'}, {created}"
    fit = fit_from_summaries(summaries, gpu_name=facts.name, gpu_uuid=facts.uuid,
                             driver_version=facts.driver_version, source=source, skipped=tuple(skipped),
                             created=created, power_limit_w=facts.power_limit_w)
    if results_dir is None:
        return fit, None
    path = write_results("calibration", result_cases(fit), device=device_record(device),
                         notes={"fit": fit.to_json(), "measurements": summaries,
                                "target_held_out_pct": TARGET_HELD_OUT_PCT, "counter_notes": list(counter_notes)},
                         results_dir=Path(results_dir))
    return fit, str(path)


def refit_results_file(doc: dict[str, Any]) -> CalibrationRun:
    """Refit from a saved `calibration-<gpu>.json` (no GPU): the same measurements, today's fit."""
    from kernelprof.errors import RunFileError

    notes = doc.get("notes") if isinstance(doc, dict) else None
    if not isinstance(notes, dict) or not isinstance(notes.get("measurements"), list):
        raise RunFileError("this file is not a calibration results file: it has no notes.measurements list")
    old = notes.get("fit", {})
    dev = doc.get("device", {})
    fit = fit_from_summaries(list(notes["measurements"]), gpu_name=dev.get("name", "unknown"),
                             gpu_uuid=dev.get("uuid"), driver_version=dev.get("driver"),
                             source=old.get("source", "from a saved results file"),
                             skipped=tuple(old.get("skipped", ())), created=old.get("created", ""),
                             power_limit_w=dev.get("power_limit_w"))  # the device record of the run
    return CalibrationRun(fit, tuple(notes["measurements"]), counter_notes=tuple(notes.get("counter_notes", ())))
