"""Each counter beside its analytic value, with a verdict and why (`Comparison`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernelprof.estimates.counters.metrics import (FLOP_TOLERANCE, FLOP_TOLERANCE_WHY, READ_TOLERANCE,
                                                   READ_TOLERANCE_WHY, READ_TOLERANCE_WHY_WARM, WRITE_TOLERANCE,
                                                   WRITE_TOLERANCE_WHY)
from kernelprof.estimates.counters.tile_models import AnalyticCounts
from kernelprof.estimates.counters.totals import CounterTotals
from kernelprof.estimates.datasheets import normalize_dtype


@dataclass(frozen=True)
class Comparison:
    """One measured quantity beside its analytic value, with a verdict and why."""

    quantity: str
    unit: str
    measured: float | None
    analytic: float | None
    ratio: float | None              # measured / analytic
    tolerance: float | None          # relative; None for informational rows
    tolerance_why: str
    status: str                      # agrees | explained | above | below | other-pipe | info | missing
    explanation: str
    expected: float | None = None    # the padded / with-known-extras figure, when there is one


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _within(ratio: float | None, tol: float) -> bool:
    return ratio is not None and abs(ratio - 1.0) <= tol


def compare_flops(t: CounterTotals, a: AnalyticCounts, dtype: str) -> Comparison:
    measured, r = t.tensor_flops, _ratio(t.tensor_flops, a.flops)
    base = dict(quantity="FLOPs (tensor cores)", unit="FLOP", measured=measured, analytic=float(a.flops), ratio=r,
                tolerance=FLOP_TOLERANCE, tolerance_why=FLOP_TOLERANCE_WHY,
                expected=None if a.computed_flops is None else float(a.computed_flops))
    if measured is None:
        return Comparison(**base, status="missing", explanation="ncu returned no tensor-pipe counters")
    if measured < 0.01 * a.flops and (t.fma_flops or 0) >= 0.5 * a.flops:
        return Comparison(**base, status="other-pipe", explanation=(
            f"the math ran on the FMA pipes (CUDA cores), not on tensor cores: FMA-pipe FLOPs are "
            f"{t.fma_flops / a.flops:.3f} x the exact count"))
    dtypes = {d for d, v in t.tensor_flops_by_dtype.items() if v}
    key = normalize_dtype(dtype)
    other = f"; tensor work counted under {', '.join(sorted(dtypes))}, not {key}" if dtypes and key not in dtypes else ""
    if _within(r, FLOP_TOLERANCE):
        return Comparison(**base, status="agrees", explanation=f"matches the exact count (x{r:.4f}){other}")
    exp_r = _ratio(a.computed_flops, a.flops)
    if a.computed_flops is not None and _within(_ratio(measured, a.computed_flops), FLOP_TOLERANCE):
        return Comparison(**base, status="explained", explanation=(
            f"x{r:.4f} the exact count, as the kernel's tiles predict (x{exp_r:.4f}): {a.computed_flops_note}{other}"))
    if r is not None and r > 1:
        why = (f"the tile model ({a.computed_flops_note}) predicts x{exp_r:.4f}, so the kernel's tiles differ from it"
               if a.computed_flops is not None else
               f"tile padding ({a.computed_flops_note}): masked tiles computed then discarded, query rows padded "
               "to the MMA tile, or a different algorithm")
        return Comparison(**base, status="above", explanation=f"x{r:.4f} the exact count; {why}{other}")
    return Comparison(**base, status="below", explanation=(
        f"x{r:.4f} the exact count: the kernel skipped work the count includes, or did part of it on the FMA "
        f"pipes ({t.fma_flops or 0:.3g} FMA-pipe FLOPs){other}"))


def compare_fma(t: CounterTotals, a: AnalyticCounts) -> Comparison:
    return Comparison(
        quantity="FLOPs (FMA pipes)", unit="FLOP", measured=t.fma_flops, analytic=float(a.flops),
        ratio=_ratio(t.fma_flops, a.flops), tolerance=None, tolerance_why="",
        status="info" if t.fma_flops is not None else "missing",
        explanation="non-tensor math (softmax exponentials and rescaling, scaling, epilogues, merges); the "
                    "analytic count leaves it out. Packed half2 instructions count once")


def _reread_cause(op: str, shape: Any, tile: dict[str, Any], ratio: float) -> str:
    """Why DRAM reads came out `ratio` x the minimum: the op's own hint (kernels/<op>/tiles.py), else L2 misses."""
    from kernels.registry import get_op

    return (get_op(op).tiles.reread_cause(shape, tile, ratio)
            or "re-reads that miss L2 (cache lines fetched by more than one program)")


def compare_reads(t: CounterTotals, a: AnalyticCounts, op: str, shape: Any, tile: dict[str, Any],
                  cache_control: str) -> Comparison:
    measured, r = t.dram_read_bytes, _ratio(t.dram_read_bytes, a.min_read_bytes)
    why = READ_TOLERANCE_WHY if cache_control == "all" else READ_TOLERANCE_WHY_WARM
    expected = a.min_read_bytes + a.extra_read_bytes if a.extra_read_bytes else None
    base = dict(quantity="DRAM bytes read", unit="B", measured=measured, analytic=float(a.min_read_bytes), ratio=r,
                tolerance=READ_TOLERANCE, tolerance_why=why, expected=None if expected is None else float(expected))
    if measured is None:
        return Comparison(**base, status="missing", explanation="ncu returned no dram__bytes_read")
    extra = (f"; includes {a.extra_bytes_note} ({a.extra_read_bytes / a.min_read_bytes:.2%} of the minimum)"
             if a.extra_read_bytes else "")
    if _within(r, READ_TOLERANCE):
        return Comparison(**base, status="agrees", explanation=f"each input read about once (x{r:.4f}){extra}")
    if r is not None and r > 1:
        if expected is not None and _within(_ratio(measured, expected), READ_TOLERANCE):
            return Comparison(**base, status="explained", explanation=(
                f"x{r:.4f} the minimum: the excess is the {a.extra_bytes_note}"))
        excess = measured - a.min_read_bytes
        scratch = (f"; the call launched {t.kernel_count} kernels, and scratch one writes and the next reads "
                   "(split-K partials, workspaces) counts as reads, since ncu flushes L2 between them"
                   if t.kernel_count > 1 and not a.extra_read_bytes else "")
        return Comparison(**base, status="above", explanation=(
            f"x{r:.4f} the minimum ({excess / 1e6:.1f} MB more): {_reread_cause(op, shape, tile, r)}{extra}{scratch}"))
    if cache_control == "none":
        cause = "inputs served from L2 left warm by the warm-up (--cache-control none)"
    else:
        cause = ("fewer bytes than the inputs although L2 was flushed: the kernel did not read all its inputs, "
                 "or the memory system compressed them")
    return Comparison(**base, status="below", explanation=f"x{r:.4f} the minimum: {cause}")


def compare_writes(t: CounterTotals, a: AnalyticCounts) -> Comparison:
    measured, r = t.dram_write_bytes, _ratio(t.dram_write_bytes, a.output_bytes)
    expected = a.output_bytes + a.extra_write_bytes if a.extra_write_bytes else None
    base = dict(quantity="DRAM bytes written", unit="B", measured=measured, analytic=float(a.output_bytes), ratio=r,
                tolerance=WRITE_TOLERANCE, tolerance_why=WRITE_TOLERANCE_WHY,
                expected=None if expected is None else float(expected))
    if measured is None:
        return Comparison(**base, status="missing", explanation="ncu returned no dram__bytes_write")
    if _within(r, WRITE_TOLERANCE):
        return Comparison(**base, status="agrees", explanation=f"the output written about once (x{r:.4f})")
    if r is not None and r < 1:
        return Comparison(**base, status="below", explanation=(
            f"x{r:.4f} the output: {(a.output_bytes - measured) / 1e6:.1f} MB of it were still in L2 when the "
            "kernel ended (L2 hits on write; written back to DRAM later, outside the kernel's count)"))
    if expected is not None and (_within(_ratio(measured, expected), WRITE_TOLERANCE) or measured <= expected):
        return Comparison(**base, status="explained", explanation=(
            f"x{r:.4f} the output: the excess is the {a.extra_bytes_note}"))
    return Comparison(**base, status="above", explanation=(
        f"x{r:.4f} the output: scratch written besides the output (split-K partials, workspace, register spills)"))


def compare_info(t: CounterTotals, a: AnalyticCounts) -> list[Comparison]:
    rows = [
        Comparison("L2 traffic (lts__t_bytes)", "B", t.l2_bytes, float(a.min_bytes), _ratio(t.l2_bytes, a.min_bytes),
                   None, "", "info" if t.l2_bytes is not None else "missing",
                   "bytes requested from L2 by the SMs; above the minimum bytes by the reuse that tiles get from L2 "
                   "instead of DRAM"),
        Comparison("duration", "s", t.duration_s, a.roofline_time_s, _ratio(t.duration_s, a.roofline_time_s), None, "",
                   "info" if t.duration_s is not None else "missing",
                   f"ncu's gpu__time_duration summed over kernels, caches flushed, clocks unmanaged; analytic: "
                   f"roofline minimum, {a.roofline_note}"),
    ]
    for name, value, what in (
            ("achieved occupancy", t.achieved_occupancy_pct, "warps in flight / the SM's maximum, while active"),
            ("SM throughput", t.sm_throughput_pct, "busiest SM pipe or unit, % of its peak over the kernel"),
            ("memory throughput", t.memory_throughput_pct, "busiest memory unit (L1, L2, DRAM), % of its peak"),
            ("DRAM throughput", t.dram_throughput_pct, "DRAM bandwidth used, % of peak")):
        rows.append(Comparison(name, "%", value, None, None, None, "", "info" if value is not None else "missing",
                               what + (" (duration-weighted over kernels)" if t.kernel_count > 1 else "")))
    return rows
