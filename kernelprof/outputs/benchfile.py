"""Benchmark results files: `benchmarks/results/<benchmark>-<gpu>.json` (format in DESIGN.md).

Every benchmark script writes through `write_results`, so every file carries the device, driver,
library versions and git revision, and `ratio` always means "1 or more is at least as good as the
baseline".
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelprof.outputs.environment import git_revision, library_versions

RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

# Metrics where a smaller value is better; the ratio is then baseline / value.
LOWER_IS_BETTER = {"ms", "us", "s", "time_ms", "time_us", "j", "mj", "j_per_call", "overhead_pct", "error_pct",
                   "cv_pct"}


@dataclass(frozen=True)
class Case:
    """One row of a benchmark: `value` of `metric` for `name`, optionally against a baseline."""

    name: str
    metric: str
    value: float
    baseline: str | None = None
    baseline_value: float | None = None
    extra: dict[str, Any] | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or not self.value or not self.baseline_value:
            return None
        if self.metric.lower() in LOWER_IS_BETTER:
            return self.baseline_value / self.value
        return self.value / self.baseline_value

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "metric": self.metric, "value": self.value}
        if self.baseline is not None and self.baseline_value is not None:
            row["baseline"] = self.baseline
            row["baseline_value"] = self.baseline_value
            row["ratio"] = self.ratio
        if self.extra:
            row.update(self.extra)
        return row


def gpu_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100'; 'NVIDIA H200' -> 'h200'; unknown -> a safe lowercase slug."""
    m = re.search(r"\b([A-Z]{1,3}\d{2,4}[A-Z]?)\b", name.upper().replace("NVIDIA", ""))
    if m:
        return m.group(1).lower()
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def device_record(index: int = 0) -> dict[str, Any]:
    """Name, driver and power limit of CUDA device `index`, as the results file wants them."""
    from kernelprof.gpu.devices import discover_gpus

    gpus = discover_gpus()
    if not gpus:
        return {"name": "no GPU"}
    g = gpus[min(index, len(gpus) - 1)]
    return {"name": g.name, "uuid": g.uuid, "driver": g.driver_version, "power_limit_w": g.power_limit_w,
            "sm_count": g.sm_count, "compute_capability": g.compute_capability}


def _plain(o: Any) -> Any:
    """numpy scalars and arrays (a calibration's fit carries numpy bools) as plain JSON values."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def write_results(benchmark: str, cases: list[Case], *, device: dict[str, Any] | None = None,
                  notes: dict[str, Any] | None = None, results_dir: Path | None = None,
                  measured_at: dict[str, Any] | None = None) -> Path:
    """Write (overwrite) the results file for `benchmark` on this device and return its path.
    `measured_at` ({"git_revision", "versions"}) is for results made later from saved measurements:
    it replaces this process's revision and versions, which did not measure anything."""
    device = device if device is not None else device_record()
    out_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "benchmark": benchmark,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_revision": measured_at.get("git_revision") if measured_at else git_revision(),
        "device": device,
        "versions": measured_at.get("versions") if measured_at else library_versions(),
        "cases": [c.to_json() for c in cases],
    }
    if notes:
        doc["notes"] = notes
    path = out_dir / f"{benchmark}-{gpu_slug(device.get('name', 'unknown'))}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_plain) + "\n")
    tmp.replace(path)  # whole file or none: a crash mid-write leaves the previous results
    return path
