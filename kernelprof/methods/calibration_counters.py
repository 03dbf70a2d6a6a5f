"""ncu counts for the calibration suite's points: what the counters model (kernelprof.estimates.energy_fit) prices.

    counts, notes = suite_counters(points, device=0)

One target process (`python -m kernelprof.methods.calibration_counters`) builds every point with the
suite's own builder (kernelprof.methods.calibration_suite), warms each up outside any range, then calls
it once inside the NVTX range `kernelprof_target` (as `kernelprof counters` does),
after a marker kernel (a one-program Triton kernel named `kernelprof_marker`) inside the same range. ncu returns the
kernels in launch order, so each marker starts the next point's kernels: this needs nothing from
ncu's NVTX column but the one range it already matches. One process for all points saves ~7 s of
Python, torch and ncu start-up per point. When the markers do not line up with the points that ran
(a target that died, a marker ncu did not return), each point that ran is profiled in a process of
its own.

Counts are per call, summed over the call's kernels (kernelprof.estimates.counters.totals), in the
keys of energy_fit.COUNTER_KEYS plus `tensor_flops[<dtype>]`. Shared-memory wavefronts are the sum of
ncu's per-operation counts (LDS/LD, STS/ST, wgmma operand reads, atomics): the H100 metric list does
not say whether its all-operations total includes wgmma, so the total is kept beside them as a check.
Clocks are left alone and caches flushed before each pass, as `kernelprof counters` does.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from kernelprof.estimates.counters import ncu as _ncu
from kernelprof.estimates.counters.metrics import CORE_METRICS
from kernelprof.estimates.counters.totals import _sum, totals_from_kernels

MARKER_KERNEL = "kernelprof_marker"  # the Triton function's name is the CUDA kernel's
_SMEM = "l1tex__data_pipe_lsu_wavefronts_mem_shared{}.sum"
SMEM_OP_METRICS = tuple(_SMEM.format(f"_op_{op}") for op in ("ld", "st", "gmma", "atom"))
SMEM_TOTAL = _SMEM.format("")
WARP_INSTRUCTIONS = "smsp__inst_executed.sum"
METRICS = list(CORE_METRICS) + list(SMEM_OP_METRICS) + [SMEM_TOTAL, WARP_INSTRUCTIONS]
WARMUP_CALLS = 3


def counts_from_kernels(kernels: Sequence[_ncu.NcuKernel]) -> dict[str, float]:
    """Per-call counts of one point's kernels, keyed as energy_fit.COUNTER_KEYS (absent counters: omitted)."""
    kernels = list(kernels)
    t = totals_from_kernels(kernels)
    out: dict[str, float] = {f"tensor_flops[{d}]": v for d, v in t.tensor_flops_by_dtype.items() if v}
    smem_parts = [_sum(kernels, m) for m in SMEM_OP_METRICS]
    values = {"fma_flops": t.fma_flops,
              "dram_bytes": None if t.dram_read_bytes is None and t.dram_write_bytes is None
              else (t.dram_read_bytes or 0.0) + (t.dram_write_bytes or 0.0),
              "l2_bytes": t.l2_bytes,
              "smem_wavefronts": None if all(v is None for v in smem_parts) else sum(v or 0.0 for v in smem_parts),
              "smem_wavefronts_ncu_total": _sum(kernels, SMEM_TOTAL),
              "warp_instructions": _sum(kernels, WARP_INSTRUCTIONS),
              "duration_s": t.duration_s}
    out.update({k: float(v) for k, v in values.items() if v is not None})
    out["kernel_count"] = float(len(kernels))
    return out


def split_at_markers(kernels: Sequence[_ncu.NcuKernel]) -> list[list[_ncu.NcuKernel]] | None:
    """Kernels in launch order cut into one group per marker (the marker dropped); None when the
    first kernel is not a marker (the split would misattribute the kernels before it)."""
    ordered = sorted(kernels, key=lambda k: k.id)
    if not ordered or MARKER_KERNEL not in ordered[0].name:
        return None
    groups: list[list[_ncu.NcuKernel]] = []
    for k in ordered:
        if MARKER_KERNEL in k.name:
            groups.append([])
        else:
            groups[-1].append(k)
    return groups


# ---------------------------------------------------------------------------------------------
# The target process (runs under ncu on the GPU machine)

def _marker() -> Callable[[], None]:
    """A one-program kernel that writes one int, compiled here (before any range) so that inside the
    range it is a launch and nothing else."""
    import torch
    import triton
    import triton.language as tl

    @triton.jit
    def kernelprof_marker(out_ptr):
        tl.store(out_ptr, 1)

    buf = torch.zeros(1, dtype=torch.int32, device="cuda")

    def launch() -> None:
        kernelprof_marker[(1,)](buf)

    launch()
    torch.cuda.synchronize()
    return launch


def run_target(names: Sequence[str], device: int = 0) -> dict[str, Any]:
    """Each named point: build, warm up, marker and one call inside the range. Returns, in order, the
    points whose call ran and, by name, those that failed (a failure before the marker launches none)."""
    import torch

    from kernelprof.methods.calibration_suite import MICROBENCHMARKS, SUBJECTS, _build

    by_name = {p.name: p for p in MICROBENCHMARKS + SUBJECTS}
    dev = torch.device("cuda", device)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 GEMMs on the CUDA cores, as measure_suite runs them
    marker = _marker()
    failed: dict[str, str] = {}
    ran: list[str] = []
    for name in names:
        try:
            fn, args, _, _ = _build(by_name[name], dev)
            for _ in range(WARMUP_CALLS):
                fn(*args)
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_push(_ncu.NVTX_RANGE)
            marker()  # this point's kernels follow it
            fn(*args)
            torch.cuda.nvtx.range_pop()
            torch.cuda.synchronize()
            ran.append(name)
        except Exception as exc:  # noqa: BLE001 - one point failing must not lose the others' counters
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            torch.cuda.empty_cache()
    return {"ran": ran, "failed": failed, "device_name": torch.cuda.get_device_name(dev)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kernelprof.methods.calibration_counters")
    p.add_argument("--points", required=True, help="comma-separated suite point names")
    p.add_argument("--info-out", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        info: dict[str, Any] = {"ok": True, **run_target(args.points.split(","))}
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        info = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
    args.info_out.write_text(json.dumps(info, indent=1))
    return 0 if info["ok"] else 1


# ---------------------------------------------------------------------------------------------
# The parent

def _profile(ncu_path: str, names: Sequence[str], env: dict[str, str], timeout_s: float,
             ) -> tuple[dict[str, list[_ncu.NcuKernel]] | None, dict[str, str]]:
    """(kernels by point, or None when the markers do not line up; failures by point)."""
    with tempfile.TemporaryDirectory(prefix="kernelprof-calcounters-") as tmp:
        info_path = Path(tmp) / "target.json"
        target = [sys.executable, "-m", "kernelprof.methods.calibration_counters", "--points", ",".join(names),
                  "--info-out", str(info_path)]
        run = _ncu.run_ncu(_ncu.build_command(ncu_path, METRICS, target), env=env, timeout_s=timeout_s)
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    if not info.get("ok", False):
        raise _ncu.NcuError(f"the calibration target failed: {info.get('error', 'it wrote no report')}")
    failed = dict(info.get("failed", {}))
    groups = split_at_markers(run.kernels)
    # A point that failed after its marker leaves a group of its own: only a clean run is split.
    if groups is None or failed or len(groups) != len(info.get("ran", [])):
        return None, failed
    return dict(zip(info["ran"], groups)), failed


def suite_counters(names: Sequence[str], *, device: int = 0, ncu: str | None = None, timeout_s: float = 900.0,
                   progress: Callable[[str], None] | None = None) -> tuple[dict[str, dict[str, float]], list[str]]:
    """ncu counts per call for each named suite point, and notes on the points that got none.

    Raises NcuNotFoundError / NcuPermissionError: without counters there is nothing to do."""
    say = progress or (lambda _msg: None)
    ncu_path = _ncu.find_ncu(ncu)
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", str(device)).split(",")[0] or str(device)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    counts: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    say(f"ncu over {len(names)} points in one process")
    try:
        grouped, failed = _profile(ncu_path, names, env, timeout_s)
    except (_ncu.NcuNotFoundError, _ncu.NcuPermissionError):
        raise
    except _ncu.NcuError as exc:
        grouped, failed = None, {}
        notes.append(f"the one-process run failed ({exc})")
    if grouped is None:
        notes.append("the one-process run could not be split by its markers: each point was profiled alone")
        grouped = {}
    counts.update({n: counts_from_kernels(k) for n, k in grouped.items() if n in names})
    for name in names:
        if name in counts:
            continue
        if name in failed:
            notes.append(f"{name}: no counters ({failed[name]})")
            continue
        say(f"ncu on {name} alone")
        try:
            alone, failed_alone = _profile(ncu_path, [name], env, timeout_s)
        except _ncu.NcuError as exc:
            notes.append(f"{name}: no counters ({exc})")
            continue
        if alone and name in alone:
            counts[name] = counts_from_kernels(alone[name])
        else:
            notes.append(f"{name}: no counters ({failed_alone.get(name, 'its kernels could not be told from the marker')})")
    return counts, notes


if __name__ == "__main__":  # pragma: no cover - run by ncu on the GPU machine
    sys.exit(main())
