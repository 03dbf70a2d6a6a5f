"""A workload's binned energy measured and saved (`kernelprof workload`): every occupied bin measured
on a Llama-shaped model (kernelprof.methods.llm.binned), the per-bin JSONL, a summary run file of
kind "workload" beside it, and one Perfetto trace built from the bins' profile runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kernelprof.methods.workloads import Binning, Bin


@dataclass(frozen=True)
class WorkloadPaths:
    """Where a workload run writes: per-bin JSONL, summary run file, Perfetto trace, bins' profile runs."""

    name: str  # the trace's name (a CSV's stem)
    bins: Path
    profiles_dir: Path

    @property
    def run_file(self) -> Path:
        return self.bins.with_suffix(".json")

    @property
    def trace(self) -> Path:
        return self.bins.with_suffix(".trace.json")

    def profile_of(self, b: Bin) -> Path:
        return self.profiles_dir / f"bin-{b.input_bin}-{b.output_bin}.profile.json"


def workload_paths(trace: str, model: str, out: str | Path | None = None,
                   profiles_dir: str | Path | None = None) -> WorkloadPaths:
    """Defaults: runs/workload-<trace>-<model>.jsonl, and its profiles in <that without .jsonl>.bins/."""
    name = Path(trace).stem if trace.endswith(".csv") else trace
    bins = Path(out) if out else Path("runs") / f"workload-{name}-{model}.jsonl"
    return WorkloadPaths(name, bins, Path(profiles_dir) if profiles_dir else Path(f"{bins.parent / bins.stem}.bins"))


def measure_bins(trace: str, model: str, paths: WorkloadPaths, *, mode: str = "optimized", max_batch: int = 64,
                 resume: bool = False, new_file: bool = False, device: int = 0,
                 on_bin: Callable[[Bin, dict[str, Any]], None] | None = None) -> Any:
    """Measure every occupied bin into `paths.bins` (each bin's profile run into `paths.profiles_dir`);
    returns the BinnedSummary."""
    from kernelprof.methods.llm.binned import run_binned

    return run_binned(trace, model, mode=mode, max_batch=max_batch, out=paths.bins, resume=resume,
                      new_file=new_file, device=device, profiles_dir=paths.profiles_dir, on_bin=on_bin)


def save_workload(summary: Any, binning: Binning, paths: WorkloadPaths, *, model: str) -> Path | None:
    """The summary run file (kind "workload") and the workload's Perfetto trace, from the bins'
    profile runs that exist; returns the trace's path (None: no bin's profile run was found)."""
    from kernelprof.methods.llm.binned import write_workload_trace
    from kernelprof.outputs.runfile import save_run, to_jsonable

    save_run(paths.run_file, "workload", {"summary": to_jsonable(summary), "bins_file": paths.bins.name})
    return write_workload_trace([(f"{b.input_bin}/{b.output_bin}", paths.profile_of(b)) for b in binning.bins],
                                paths.trace, title=f"{paths.name} on {model}")


def missing_profiles(binning: Binning, paths: WorkloadPaths) -> list[Bin]:
    """Bins whose profile run is not in the profiles folder (measured by an earlier process)."""
    return [b for b in binning.bins if not paths.profile_of(b).exists()]
