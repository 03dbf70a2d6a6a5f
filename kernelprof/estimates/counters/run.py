"""Hardware counters beside the analytic counts: one kernel call under Nsight Compute.

    result = measure_counters("decode", "triton-splitk", "b=16,h=32,kv=8,ctx=8192,d=128", "bf16")

runs `python -m kernelprof.estimates.counters.target` under ncu (kernelprof.estimates.counters.ncu): the target warms the
variant up (compile, autotune) outside an NVTX range and makes exactly one call inside it, so ncu
profiles only the kernels of that call (a split-K decode: its chunk and merge kernels). Counters
are summed over those kernels and compared with the op's exact counts:

- tensor-core FLOPs (ncu's `sm__ops_path_tensor_src_<dtype>` count 2 per multiply-add: the captured
  cuBLAS 4096^3 bf16 GEMM read exactly 2*4096^3) against the exact FLOPs, and against what the
  kernel's tiles compute when that is known (masked causal tiles, GQA rows padded to 16);
- FMA-pipe FLOPs (2 per FFMA/HFMA/DFMA thread instruction, 1 per ADD/MUL), the softmax and
  epilogue work the analytic count leaves out;
- DRAM bytes read against the minimum (every input once) and written against the output;
- L2 traffic, achieved occupancy, SM and memory throughput, duration: shown, not judged.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelprof import errors as _errors
from kernelprof.errors import KernelprofError, UsageError
from kernelprof.estimates.counters import ncu as _ncu
from kernelprof.estimates.counters.metrics import CORE_METRICS, _KEEP_LAUNCH, OPTIONAL_METRICS, TENSOR_FLOP_METRICS
from kernelprof.estimates.counters.tile_models import analytic_counts, AnalyticCounts
from kernelprof.estimates.counters.totals import CounterTotals, _path_sum, _sum, totals_from_kernels
from kernelprof.estimates.counters.verdicts import (compare_flops, compare_fma, compare_info, compare_reads,
                                                    compare_writes, Comparison)
from kernelprof.estimates.datasheets import normalize_dtype
from kernelprof.methods.ops import resolve_kernel


@dataclass(frozen=True)
class CountersResult:
    """One `kernelprof counters` measurement."""

    op: str
    variant: str
    shape: str
    dtype: str
    device_name: str | None
    compute_capability: str | None
    kernels: list[_ncu.NcuKernel]
    totals: CounterTotals
    analytic: AnalyticCounts
    comparisons: list[Comparison]
    tile_config: dict[str, Any]
    cache_control: str
    ncu_version: str
    ncu_command: list[str]
    metrics: list[str]
    metrics_missing: list[str]
    notes: list[str] = field(default_factory=list)
    ncu_wall_s: float | None = None
    method: str = "nsight_compute"


def build_result(op: str, variant: str, shape: str, dtype: str, kernels: list[_ncu.NcuKernel], *,
                 tile_config: dict[str, Any] | None = None, device_name: str | None = None,
                 compute_capability: str | None = None, cache_control: str = "all", ncu_version: str = "unknown",
                 ncu_command: list[str] | None = None, metrics: list[str] | None = None,
                 notes: list[str] | None = None, ncu_wall_s: float | None = None) -> CountersResult:
    """Totals, analytic counts and verdicts from parsed ncu kernels (no GPU needed)."""
    from kernels.registry import get_op

    tile = dict(tile_config or {})
    spec = get_op(op)
    shape_obj = spec.parse_shape(shape)
    metrics = list(metrics if metrics is not None else CORE_METRICS + OPTIONAL_METRICS)
    totals = totals_from_kernels(kernels)
    a = analytic_counts(op, variant, shape, dtype, tile, device_name, compute_capability)
    notes = list(notes or [])
    notes += spec.tiles.launch_notes(variant, tile, [(k.name, k.grid) for k in kernels])
    for dtype_key in ("bf16", "fp16"):
        agg = _sum(kernels, TENSOR_FLOP_METRICS[dtype_key])
        paths = _path_sum(totals.tensor_flops_by_path, dtype_key)
        if paths is not None and (agg is None or paths > agg * 1.0001):
            notes.append(f"{TENSOR_FLOP_METRICS[dtype_key]} ({agg}) counted less than its wgmma + mma.sync paths "
                         f"({paths:.6g}); the path sum is used")
    comparisons = [compare_flops(totals, a, dtype), compare_fma(totals, a),
                   compare_reads(totals, a, op, shape_obj, tile, cache_control), compare_writes(totals, a),
                   *compare_info(totals, a)]
    missing = sorted({m for m in metrics if all(k.values.get(m) is None for k in kernels)})
    keep = set(metrics) | set(_KEEP_LAUNCH)
    slim = [_ncu.NcuKernel(k.id, k.name, k.grid, k.block, {m: v for m, v in k.values.items() if m in keep},
                           {m: u for m, u in k.units.items() if m in keep}, k.nvtx) for k in kernels]
    return CountersResult(op=op, variant=variant, shape=str(shape_obj), dtype=normalize_dtype(dtype),
                          device_name=device_name, compute_capability=compute_capability, kernels=slim,
                          totals=totals, analytic=a, comparisons=comparisons, tile_config=tile,
                          cache_control=cache_control, ncu_version=ncu_version, ncu_command=list(ncu_command or []),
                          metrics=metrics, metrics_missing=missing, notes=notes, ncu_wall_s=ncu_wall_s)


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def target_command(op: str, variant: str, shape: str, dtype: str, info_out: Path, *, seed: int = 0) -> list[str]:
    return [sys.executable, "-m", "kernelprof.estimates.counters.target", "--op", op, "--variant", variant, "--shape", shape,
            "--dtype", dtype, "--seed", str(seed), "--info-out", str(info_out)]


def _raise_target_error(info: dict[str, Any]) -> None:
    cls = getattr(_errors, str(info.get("error_type")), None)
    if not (isinstance(cls, type) and issubclass(cls, KernelprofError)):
        cls = KernelprofError
    raise cls(f"the profiled target failed: {info.get('error', 'no message')}")


def measure_counters(op: str, variant: str | None = None, shape: str | None = None, dtype: str = "bf16", *,
                     ncu: str | None = None, cache_control: str = "all", timeout_s: float = 600.0, seed: int = 0,
                     raw_output_path: str | Path | None = None, device: int = 0) -> CountersResult:
    """Profile one call of `op`/`variant` at `shape` under ncu and compare its counters with the counts.

    Raises NcuNotFoundError (no ncu), NcuPermissionError (ERR_NVGPUCTRPERM), NoKernelsProfiledError,
    the registry's ShapeError for bad names, or the target's own error (e.g. NotSupportedError)."""
    req = resolve_kernel(op, variant, shape, dtype)  # before looking for ncu or a GPU
    variant, shape_obj = req.variant, req.shape
    if cache_control not in ("all", "none"):
        raise UsageError(f"cache_control must be 'all' or 'none', got {cache_control!r}")
    ncu_path = _ncu.find_ncu(ncu)
    from kernelprof.gpu.devices import require_gpu

    require_gpu("kernelprof counters")
    env = dict(os.environ)
    # The target process profiles its cuda:0: make that CUDA device `device` (of those already visible).
    visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if device >= len(visible) > 0:
        raise UsageError(f"--device {device}: only {len(visible)} device(s) are visible (CUDA_VISIBLE_DEVICES)")
    env["CUDA_VISIBLE_DEVICES"] = visible[device] if visible else str(device)
    env["PYTHONPATH"] = os.pathsep.join([str(_repo_root())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kernelprof-counters-") as tmp:
        info_path = Path(tmp) / "target.json"
        target = target_command(op, variant, str(shape_obj), dtype, info_path, seed=seed)

        def attempt(metrics: list[str]) -> _ncu.NcuRun:
            info_path.unlink(missing_ok=True)
            command = _ncu.build_command(ncu_path, metrics, target, cache_control=cache_control)

            def check_target() -> None:
                if info_path.is_file():
                    info = json.loads(info_path.read_text())
                    if not info.get("ok"):
                        _raise_target_error(info)

            return _ncu.run_ncu(command, env=env, timeout_s=timeout_s, precheck=check_target)

        metrics = CORE_METRICS + OPTIONAL_METRICS
        try:
            run = attempt(metrics)
        except (_ncu.NcuNotFoundError, _ncu.NcuPermissionError, _ncu.NoKernelsProfiledError):
            raise
        except _ncu.NcuError as exc:
            # The optional rollups are the only names not seen working on H100: retry without them.
            notes.append(f"ncu refused the optional metrics ({exc}); retried with the core list")
            metrics = list(CORE_METRICS)
            run = attempt(metrics)
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    # Clocks are deliberately unmanaged: ncu's warning about it is expected, not news.
    notes += [f"ncu said: {m}" for m in run.messages if "unmodified GPU clocks" not in m]
    if raw_output_path is not None:
        Path(raw_output_path).parent.mkdir(parents=True, exist_ok=True)
        Path(raw_output_path).write_text(run.output)
    return build_result(op, variant, str(shape_obj), dtype, run.kernels, tile_config=info.get("tile_config"),
                        device_name=info.get("device_name"), compute_capability=info.get("compute_capability"),
                        cache_control=cache_control, ncu_version=_ncu.ncu_version(ncu_path), ncu_command=run.command,
                        metrics=metrics, notes=notes + list(info.get("notes", [])), ncu_wall_s=run.wall_s)


def result_to_json(result: CountersResult) -> dict[str, Any]:
    from kernelprof.outputs.runfile import to_jsonable

    return to_jsonable(result)


def verdict_summary(result: CountersResult | dict[str, Any]) -> dict[str, str]:
    """quantity -> status, for tests and scripts."""
    rows = result["comparisons"] if isinstance(result, dict) else [c.__dict__ for c in result.comparisons]
    return {c["quantity"]: c["status"] for c in rows}
