"""The ladder over a binned workload, and the ladder's results file.

First rung on a workload: kernelprof's eager model (kp-eager); last: kp-triton; both through
`run_binned` (one batch per bin, each at the largest batch its mode fits, resumable per bin). The
transformers rungs are not binned: one HF model build per bin shape with torch.compile would not fit
the 20-minute budget, so the workload saving is eager kernelprof -> optimized kernelprof, said so in
the notes (the paper's baseline was native PyTorch, which kp-eager mirrors, not transformers).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from kernelprof.errors import UsageError
from kernelprof.methods.ladder import RungResult

WORKLOADS = ("azure-conv", "azure-code", "burstgpt-fitted")
FIRST_MODE, LAST_MODE = "eager", "optimized"


@dataclass(frozen=True)
class BinSaving:
    key: str                       # "<input bin>/<output bin>"
    requests: int
    first_j_per_request: float | None
    last_j_per_request: float | None

    @property
    def saving_pct(self) -> float | None:
        a, b = self.first_j_per_request, self.last_j_per_request
        return None if not a or b is None else 100.0 * (1.0 - b / a)


@dataclass(frozen=True)
class WorkloadLadder:
    workload: str
    model: str
    first_rung: str
    last_rung: str
    first_energy_j: float | None
    last_energy_j: float | None
    first_ratio: float | None      # measured / the paper's TDP-FLOP estimate
    last_ratio: float | None
    bins: tuple[BinSaving, ...]
    notes: tuple[str, ...] = ()
    # GPU time serving the workload and energy by phase, each rung (None in files written before them):
    first_time_s: float | None = None
    last_time_s: float | None = None
    first_prefill_j: float | None = None
    first_decode_j: float | None = None
    last_prefill_j: float | None = None
    last_decode_j: float | None = None
    # Bins both rungs measured, over which the totals are taken, and the trace's bins (None: older files).
    bins_compared: int | None = None
    bins_in_trace: int | None = None

    @property
    def partial(self) -> bool:
        """True while some bin of the trace lacks a measurement in either rung: the totals (and the
        saving) then cover only the bins both measured, which are not the trace."""
        return self.bins_compared is not None and self.bins_compared != self.bins_in_trace

    @property
    def saving_pct(self) -> float | None:
        return saving_pct(self.first_energy_j, self.last_energy_j)

    @property
    def change(self) -> str | None:
        """The saving split into its time and power parts ("-75.0% time at +44.0% power: ...")."""
        from kernelprof.methods.ladder import change_text

        e0, e1, t0, t1 = self.first_energy_j, self.last_energy_j, self.first_time_s, self.last_time_s
        if not e0 or not e1 or not t0 or not t1:
            return None
        return change_text(t1 / t0, (e1 / t1) / (e0 / t0))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["saving_pct"] = self.saving_pct
        d["change"] = self.change
        for b, o in zip(d["bins"], self.bins):
            b["saving_pct"] = o.saving_pct
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "WorkloadLadder":
        names = set(cls.__dataclass_fields__)
        d = {k: v for k, v in d.items() if k in names}
        bins = tuple(BinSaving(**{k: v for k, v in b.items() if k != "saving_pct"}) for b in d.pop("bins", ()))
        return cls(**{**d, "bins": bins, "notes": tuple(d.get("notes", ()))})


def saving_pct(first_j: float | None, last_j: float | None) -> float | None:
    return None if not first_j or last_j is None else 100.0 * (1.0 - last_j / first_j)


def bin_savings(first: dict[str, dict[str, Any]], last: dict[str, dict[str, Any]]) -> tuple[BinSaving, ...]:
    """Per-bin J per request of each rung from run_binned's records (status "ok" only)."""
    def jpr(rec: dict[str, Any] | None) -> float | None:
        if not rec or rec.get("status") != "ok":
            return None
        return rec["energy_per_batch_j"] / rec["batch"]

    keys = sorted(set(first) | set(last), key=_bin_order)
    return tuple(BinSaving(k, (first.get(k) or last.get(k))["requests"], jpr(first.get(k)), jpr(last.get(k)))
                 for k in keys)


def run_workload_ladder(workload: str, model: str, *, out_dir: Path, device: int = 0,
                        max_batch: int = 64, only: str | None = None, other_gpu: bool = False) -> WorkloadLadder:
    """Both rungs over the binned trace; each rung's bins stream to out_dir/<mode>.jsonl and resume
    (a finished file costs no GPU work: run_binned builds the model only for a missing bin).
    `only` ("first"|"last"): measure that rung alone and read the other from its file if present
    (no GPU work and no GPU check for it), so one trace can be split over device calls of under 10
    minutes, each possibly on another card (`other_gpu`: a rung's own file may continue there too)."""
    from kernelprof.methods.llm.binned import run_binned

    out_dir.mkdir(parents=True, exist_ok=True)
    if only not in (None, "first", "last"):
        raise UsageError(f"only must be 'first' or 'last', got {only!r}")
    summaries: dict[str, Any] = {}
    for mode, which in ((FIRST_MODE, "first"), (LAST_MODE, "last")):
        path = out_dir / f"{mode}.jsonl"
        if only is not None and only != which:
            summaries[mode] = saved_binned(workload, model, mode, path, max_batch) if path.exists() else None
            continue
        summaries[mode] = run_binned(workload, model, mode=mode, max_batch=max_batch, out=path,
                                     resume=path.exists(), device=device, other_gpu=other_gpu)
    return _ladder(workload, model, out_dir, summaries[FIRST_MODE], summaries[LAST_MODE])


def saved_workload_ladder(workload: str, model: str, *, out_dir: Path, max_batch: int = 64) -> WorkloadLadder:
    """The workload ladder from out_dir's two rung files, measuring nothing (no GPU needed)."""
    paths = [out_dir / f"{mode}.jsonl" for mode in (FIRST_MODE, LAST_MODE)]
    if not any(p.exists() for p in paths):
        raise UsageError(f"{out_dir} holds neither {paths[0].name} nor {paths[1].name}: nothing to read")
    f, l = (saved_binned(workload, model, mode, p, max_batch) if p.exists() else None
            for mode, p in zip((FIRST_MODE, LAST_MODE), paths))
    return _ladder(workload, model, out_dir, f, l)


def saved_binned(workload: str, model: str, mode: str, path: Path, max_batch: int = 64) -> Any:
    """One rung's BinnedSummary from its bin file; the configuration known without a GPU (trace,
    model, mode, batch rule) must match. The paper estimate is each record's own (its GPU's sheet)."""
    from kernelprof.methods.llm.bin_store import read_bin_store, workload_config
    from kernelprof.methods.llm.binned import summarize_bins
    from kernelprof.methods.workloads import bin_workload, load_workload
    from kernelprof.outputs.jsonl_store import check_resume

    w = load_workload(workload)
    read = read_bin_store(path)
    read.emit_warnings()
    check_resume(read, workload_config(w, model, mode, max_batch))
    return summarize_bins(w, bin_workload(w), list(read.records.values()), model, mode, sheet=None)


def measured_on(records: dict[str, dict[str, Any]]) -> list[str]:
    """The GPUs (uuid, driver) and revisions a bin file's ok records were measured on."""
    seen = []
    for rec in records.values():
        c = rec.get("config", {})
        tag = f"{c.get('gpu_uuid', '?')} (driver {c.get('driver', '?')}, revision {rec.get('git_revision', 'not recorded')})"
        if rec.get("status") == "ok" and tag not in seen:
            seen.append(tag)
    return seen


def revisions_in(out_dir: Path) -> str:
    """The git revisions that measured the ok bins of out_dir's rung files, comma-separated."""
    revs = {rec.get("git_revision") or "not recorded" for mode in (FIRST_MODE, LAST_MODE)
            if (out_dir / f"{mode}.jsonl").exists()
            for rec in read_bins_of(out_dir, mode).values() if rec.get("status") == "ok"}
    return ",".join(sorted(revs)) or "none"


def _ladder(workload: str, model: str, out_dir: Path, f: Any, l: Any) -> WorkloadLadder:
    if f is None or l is None:
        done = f or l
        return WorkloadLadder(workload, model, "kp-eager", "kp-triton", f and f.energy_j, l and l.energy_j,
                              f and f.ratio, l and l.ratio, (), ("one rung measured so far; rerun with the other",)
                              + done.notes)
    notes = ["first rung kp-eager, last kp-triton (each bin at the largest batch its mode fits): the transformers "
             "rungs are measured only in the single-batch ladder",
             "measured / estimate: the paper's TDP / headline bf16 peak x FLOPs"]
    recs = {mode: read_bins_of(out_dir, mode) for mode in (FIRST_MODE, LAST_MODE)}  # each file read once here
    on = {mode: measured_on(r) for mode, r in recs.items()}
    notes.append(f"measured on: first rung {'; '.join(on[FIRST_MODE])}; last rung {'; '.join(on[LAST_MODE])}")
    if len({t.split()[0] for ts in on.values() for t in ts}) > 1:
        notes.append("the rungs (or bins) were measured on different cards of one model: card-to-card spread "
                     "(a few % in power) enters the saving")
    if f.bins_failed or l.bins_failed:
        notes.append(f"bins without a measurement (left out of the totals): eager {list(f.bins_failed)}, "
                     f"optimized {list(l.bins_failed)}")
    ok = {mode: {k for k, r in recs[mode].items() if r.get("status") == "ok"} for mode in recs}
    common = ok[FIRST_MODE] & ok[LAST_MODE]
    bins_in_trace = len(_binning(workload).bins)
    if ok[FIRST_MODE] != ok[LAST_MODE]:
        # Totals over different bin sets are not a saving: both rungs are summed over the shared bins.
        f, l = (_summary_over(workload, model, mode, recs[mode], common) for mode in (FIRST_MODE, LAST_MODE))
        only = sorted(ok[FIRST_MODE] ^ ok[LAST_MODE], key=_bin_order)
        notes.append(f"totals and saving over the {len(common)} bins both rungs measured, of the trace's "
                     f"{bins_in_trace}; measured by one rung only, left out of both: {', '.join(only)}")
    if len(common) != bins_in_trace:
        notes.append(f"PARTIAL: {bins_in_trace - len(common)} of the trace's {bins_in_trace} bins are not in the "
                     "totals, so the saving is not yet the trace's")
    return WorkloadLadder(workload, model, "kp-eager", "kp-triton", f.energy_j, l.energy_j, f.ratio, l.ratio,
                          bin_savings(recs[FIRST_MODE], recs[LAST_MODE]),
                          tuple(notes) + f.notes, f.gpu_time_s, l.gpu_time_s, f.prefill_energy_j, f.decode_energy_j,
                          l.prefill_energy_j, l.decode_energy_j, len(common), bins_in_trace)


def _bin_order(key: str) -> tuple[int, ...]:
    return tuple(int(x) for x in key.split("/"))


def _binning(workload: str) -> Any:
    from kernelprof.methods.workloads import bin_workload, load_workload

    return bin_workload(load_workload(workload))


def _summary_over(workload: str, model: str, mode: str, records: dict[str, dict[str, Any]], keys: set[str]) -> Any:
    """One rung's summary from its records restricted to `keys` (each bin's recorded paper estimate)."""
    from kernelprof.methods.llm.binned import summarize_bins
    from kernelprof.methods.workloads import bin_workload, load_workload

    w = load_workload(workload)
    return summarize_bins(w, bin_workload(w), [r for k, r in records.items() if k in keys], model, mode, sheet=None)


def read_bins_of(out_dir: Path, mode: str) -> dict[str, dict[str, Any]]:
    from kernelprof.methods.llm.binned import read_bins

    return read_bins(out_dir / f"{mode}.jsonl")


def ladder_cases(rungs: Sequence[RungResult], workloads: Sequence[WorkloadLadder]) -> list[Any]:
    from kernelprof.outputs.benchfile import Case

    cases = []
    for r in rungs:
        if not r.repeats:
            continue
        extra = {"batch": r.batch, "input_len": r.input_len, "output_len": r.output_len, "repeats": len(r.repeats)}
        for metric, value in (("j_per_request", r.j_per_request), ("time_s", r.time_s),
                              ("mean_power_w", r.mean_power_w)):
            if value is not None and math.isfinite(value):
                cases.append(Case(f"rung/{r.name}/{metric}", metric, value, extra=dict(extra)))
    for w in workloads:
        if w.saving_pct is not None:
            # A saving over part of the trace gets its own name, so that it is never read as the trace's.
            name = "partial_saving_pct" if w.partial else "saving_pct"
            cases.append(Case(f"workload/{w.workload}/{name}", "saving_pct", w.saving_pct,
                              extra={"first_energy_j": w.first_energy_j, "last_energy_j": w.last_energy_j,
                                     "first_ratio": w.first_ratio, "last_ratio": w.last_ratio,
                                     "bins_compared": w.bins_compared, "bins_in_trace": w.bins_in_trace}))
    return cases


def write_ladder_results(rungs: Sequence[RungResult], workloads: Sequence[WorkloadLadder], *, device: int = 0,
                         merge: bool = False, results_dir: Path | None = None, device_info: dict | None = None,
                         measured_at: dict | None = None) -> Path:
    """benchmarks/results/ladder-<gpu>.json; `merge` keeps the rows of cases not rewritten now."""
    import json

    from kernelprof.outputs.benchfile import RESULTS_DIR, Case, device_record, gpu_slug, write_results

    dev = device_info if device_info is not None else device_record(device)
    cases = ladder_cases(rungs, workloads)
    path = Path(results_dir or RESULTS_DIR) / f"ladder-{gpu_slug(dev.get('name', 'unknown'))}.json"
    kept_notes: dict[str, dict] = {"rungs": {}, "workloads": {}}
    if merge and path.exists():
        new = {c.name for c in cases}
        old = json.loads(path.read_text())
        kept_notes = {k: dict(old.get("notes", {}).get(k) or {}) for k in kept_notes}  # the others' reasons stay
        for row in old["cases"]:
            if row["name"] not in new:
                base = {k: row[k] for k in ("name", "metric", "value")}
                cases.append(Case(**base, extra={k: v for k, v in row.items() if k not in base} or None))
    notes = {"rungs": {**kept_notes["rungs"], **{r.name: {"change": r.change.text if r.change else None,
                                                          "verdict": r.change.verdict if r.change else None,
                                                          "reason": r.reason, "flags": list(r.flags),
                                                          "notes": list(r.notes)} for r in rungs}},
             "workloads": {**kept_notes["workloads"], **{w.workload: w.to_json() for w in workloads}}}
    if measured_at:
        notes["results_written_from_saved_rungs"] = measured_at.get("note", "written from a saved ladder file")
    return write_results("ladder", cases, device=dev, notes=notes, results_dir=results_dir, measured_at=measured_at)
