"""NVML's energy sources against each other (issue 7's `kernelprof counters --energy`).

The sensor characterization already runs a steady load and square waves at several duty cycles
with the energy counter pinned to its updates; this module takes its agreement table, from a new
run or from a saved sensor run file, rather than loading the GPU a second time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kernelprof.errors import RunFileError


@dataclass(frozen=True)
class SourceRow:
    """One load: each source's joules over the same window, and each one's error against the counter."""

    load: str
    duty: float | None
    window_s: float
    counter_j: float
    counter_mean_w: float
    samples_j: float | None
    instant_j: float | None
    average_field_j: float | None
    samples_vs_counter_pct: float | None
    instant_vs_counter_pct: float | None
    average_vs_counter_pct: float | None
    spread_pct: float | None  # (largest - smallest) of the four, % of the counter


@dataclass(frozen=True)
class EnergyCrossCheck:
    gpu_name: str
    uuid: str | None
    driver: str | None
    source_run: str  # the sensor run the numbers come from ("measured now" or a path)
    rows: tuple[SourceRow, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rows_from_report(report: dict[str, Any]) -> tuple[SourceRow, ...]:
    rows = []
    for a in report.get("agreements", []):
        vals = [v for v in (a["counter_j"], a.get("samples_j"), a.get("instant_j"), a.get("average_field_j"))
                if v is not None]
        spread = 100.0 * (max(vals) - min(vals)) / a["counter_j"] if a["counter_j"] else None
        rows.append(SourceRow(a["label"], a.get("duty"), a["window_s"], a["counter_j"], a["counter_mean_w"],
                              a.get("samples_j"), a.get("instant_j"), a.get("average_field_j"),
                              a.get("samples_diff_pct"), a.get("instant_diff_pct"), a.get("average_diff_pct"), spread))
    return tuple(rows)


def from_sensor_run(path: str | Path) -> EnergyCrossCheck:
    """The cross-check from a saved `kernelprof sensor --out` run (no GPU needed)."""
    from kernelprof.outputs.runfile import load_run

    run = load_run(path, kind="sensor")
    report = run.payload.get("report")
    if not isinstance(report, dict) or "agreements" not in report:
        raise RunFileError(f"{path} has no agreement table in its sensor report")
    return EnergyCrossCheck(report.get("name", "?"), report.get("uuid"), report.get("driver"), str(path),
                            rows_from_report(report))


def measure_now(gpu: int = 0) -> EnergyCrossCheck:
    """Run the sensor characterization (~20 s of square waves) and take its agreement table."""
    from kernelprof.gpu.devices import require_gpu
    from kernelprof.outputs.runfile import to_jsonable
    from kernelprof.methods.sensor import characterize

    require_gpu("kernelprof counters --energy")
    report, _trace, _timeline = characterize(gpu, save=False)
    doc = to_jsonable(report)
    return EnergyCrossCheck(doc.get("name", "?"), doc.get("uuid"), doc.get("driver"), "measured now",
                            rows_from_report(doc))
