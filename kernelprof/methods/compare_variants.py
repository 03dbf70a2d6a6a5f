"""Variants of one op measured (or read from a sweep) at one shape, compared with a baseline, and
saved as a run file of kind "compare" with the energy-vs-time plot beside it.

`kernelprof compare` and `kernelprof demo` call `compare_variants` and `save_compare_run`; the
verdicts themselves are kernelprof.methods.compare.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from kernelprof.errors import BUG_HINT, InternalError, UsageError, is_internal_bug
from kernelprof.methods.compare import Comparison, VariantPoint, compare_all
from kernelprof.methods.kernel_measurement import MeasureConfig


@dataclass(frozen=True)
class VariantComparison:
    """What `kernelprof compare` saves: each variant's kernel measurement (as JSON), the variants
    that failed and why, and the ratios against the baseline."""

    op: str
    shape: str
    dtype: str
    baseline: str
    gpu_name: str
    variants: dict[str, dict[str, Any]]  # variant -> KernelEnergy.to_json()
    failed: dict[str, str]  # variant -> "ErrorType: message"
    comparisons: tuple[Comparison, ...]
    plot: str | None = None  # file name of the energy-vs-time PNG beside the run file
    # Per-call energy and time of each measured variant in the order asked for (the plot's legend
    # order); not saved: `variants` holds the same numbers.
    points: tuple[VariantPoint, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The run file's payload (key order is what `--json` prints)."""
        from kernelprof.outputs.runfile import to_jsonable

        return {"op": self.op, "shape": self.shape, "dtype": self.dtype, "baseline": self.baseline,
                "gpu_name": self.gpu_name, "variants": self.variants, "failed": self.failed,
                "comparisons": [to_jsonable(c) for c in self.comparisons], "plot": self.plot}


def point_of(name: str, k: dict[str, Any]) -> VariantPoint:
    """One variant's per-call energy and time out of its KernelEnergy JSON."""
    m = k["measurement"]
    if m["energy_per_call_j"] is None:
        raise UsageError(f"variant {name} has no energy measurement")
    return VariantPoint(name, m["energy_per_call_j"], m["energy_ci_j"] or 0.0, m["time_per_call_s"], m["time_ci_s"] or 0.0)


def resolve_variants(op_name: str | None, fn: str | None, variants: str | Sequence[str] | None, *,
                     probe: bool = True) -> tuple[Any, list[str]]:
    """The op (a registered one, or a user's `MODULE:FUNCTION`) and the variants to compare (default all)."""
    from kernels import get_op

    from kernelprof.methods.user_case import user_op

    op = user_op(fn, variants, probe=probe) if fn else get_op(op_name or "")
    if isinstance(variants, str):
        variants = variants.split(",") if variants else None
    names = list(variants) if variants else list(op.variants)
    bad = [v for v in names if v not in op.variants]
    if bad:
        raise UsageError(f"unknown variant(s) {bad} for {op.name}; available: {sorted(op.variants)}")
    if len(names) < 2:
        raise UsageError("compare needs at least two variants")
    return op, names


def variants_from_sweep(path: Path, op: Any, variants: Sequence[str], shape: str, dtype: str) -> dict[str, dict[str, Any]]:
    """The sweep's ok points of `op` at `shape` and `dtype` (canonical name), one per variant."""
    from kernelprof.methods.sweep import read_done

    measured: dict[str, dict[str, Any]] = {}
    for rec in read_done(Path(path)).values():
        if rec.get("op") == op.name and rec.get("variant") in variants and rec.get("status") == "ok" \
                and rec.get("dtype") == dtype and str(op.parse_shape(rec["shape"])) == shape:
            measured[rec["variant"]] = rec["result"]
    return measured


def measure_variants(op: Any, variants: Sequence[str], shape: str, dtype: str, *, config: MeasureConfig | None,
                     device: int = 0, seed: int = 0, paper_convention: str = "headline",
                     on_variant: Callable[[str], None] | None = None,
                     on_failure: Callable[[str, str], None] | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each variant measured by kernelprof.methods.kernel_energy.measure_op: (results as JSON, failures).

    A variant that fails (OOM, unsupported) is recorded and the others go on; kernelprof's own bug
    is raised as an InternalError instead.
    """
    from kernelprof.gpu.devices import require_gpu
    from kernelprof.methods.kernel_energy import measure_op

    require_gpu("kernelprof compare")
    measured: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for v in variants:
        if on_variant:
            on_variant(v)
        try:
            measured[v] = measure_op(op.name, v, shape, dtype, device=device, config=config,
                                     seed=seed, paper_convention=paper_convention).to_json()
        except Exception as exc:  # noqa: BLE001 - one variant failing (OOM, unsupported) must not lose the rest
            if is_internal_bug(exc):  # kernelprof's own bug is not the variant's failure
                raise InternalError(f"variant {v} hit {type(exc).__name__}: {exc}; {BUG_HINT}") from exc
            failed[v] = f"{type(exc).__name__}: {exc}"
            if on_failure:
                on_failure(v, failed[v])
    return measured, failed


def compare_variants(op: str | None, variants: str | Sequence[str] | None = None, *, fn: str | None = None,
                     shape: str | None = None, dtype: str = "bf16", baseline: str | None = None,
                     config: MeasureConfig | Callable[[], MeasureConfig] | None = None, device: int = 0,
                     seed: int = 0, paper_convention: str = "headline", from_sweep: str | Path | None = None,
                     on_variant: Callable[[str, str, str], None] | None = None,
                     on_failure: Callable[[str, str], None] | None = None) -> VariantComparison:
    """Measure `variants` of `op` (or a user's `fn`) at `shape`, or read them `from_sweep`, and
    compare each with `baseline` (default the first measured).

    `config`: a MeasureConfig, or a function that builds one; it is called after the op, variants,
    shape and dtype are checked (so the CLI reports a bad op before a bad option), and not at all
    with `from_sweep`. `on_variant(op, variant, shape)` is called before each measurement and
    `on_failure(variant, error)` after a variant fails.
    """
    from kernelprof.validate import check_dtype

    op_obj, names = resolve_variants(op, fn, variants, probe=not from_sweep)
    shape_s = str(op_obj.parse_shape(shape if shape is not None else op_obj.default_shape))
    canonical = check_dtype(dtype, op_obj.name)
    config = None if from_sweep else config() if callable(config) else config
    if baseline and baseline not in names:
        raise UsageError(f"baseline {baseline!r} is not among the variants {names}")
    if from_sweep:
        measured, failed = variants_from_sweep(Path(from_sweep), op_obj, names, shape_s, canonical), {}
    else:
        measured, failed = measure_variants(
            op_obj, names, shape_s, dtype, config=config, device=device, seed=seed, paper_convention=paper_convention,
            on_variant=(lambda v: on_variant(op_obj.name, v, shape_s)) if on_variant else None, on_failure=on_failure)
    done = [v for v in names if v in measured]
    if len(done) < 2:
        raise UsageError(f"fewer than two variants measured at {shape_s} ({done}); nothing to compare")
    base = baseline or done[0]
    if base not in done:
        raise UsageError(f"baseline {base!r} was not measured; measured: {done}")
    points = [point_of(v, measured[v]) for v in done]
    return VariantComparison(op_obj.name, shape_s, dtype, base, next(iter(measured.values()))["gpu_name"],
                             measured, failed, tuple(compare_all(points, baseline=base)), points=tuple(points))


def save_compare_run(result: VariantComparison, out: str | Path | None = None) -> tuple[VariantComparison, Path, Path]:
    """Write the energy-vs-time plot and the run file (default runs/compare-<op>-<time>.json).

    Returns the result with its plot's name set, the run file's path and the plot's path.
    """
    from dataclasses import replace

    from kernelprof.outputs.plots import energy_vs_time_png
    from kernelprof.outputs.runfile import default_run_path, save_run

    path = Path(out) if out else default_run_path(f"compare-{result.op}")
    png = path.with_suffix(".png")
    energy_vs_time_png(result.points, png, title=f"{result.op} {result.shape} {result.dtype} on {result.gpu_name}")
    result = replace(result, plot=png.name)
    save_run(path, "compare", result.to_json())
    return result, path, png
