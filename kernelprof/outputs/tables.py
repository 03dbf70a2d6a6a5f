"""Saved runs as CSV rows, for `kernelprof report --csv`: one row per phase of a profile run, per
point of a sweep's .jsonl or per bin of a workload's .jsonl, and one per phase of an llm run."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Iterable, TextIO

PHASE_FIELDS = ("path", "depth", "time_s", "energy_j", "energy_uncertainty_j", "mean_power_w", "energy_counter_j",
                "counter_diff_pct", "method", "flags")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; lists of flags or codes become ';'-joined strings."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (list, tuple)):
            out[prefix + k] = ";".join(x.get("code", json.dumps(x)) if isinstance(x, dict) else str(x) for x in v)
        else:
            out[prefix + k] = v
    return out


def rows_of(path: Path) -> list[dict[str, Any]]:
    """The CSV rows of a saved run or results .jsonl."""
    if path.suffix == ".jsonl":
        from kernelprof.methods.ladder_store import is_ladder_jsonl, saved_ladder
        from kernelprof.outputs.jsonl_store import read_store

        if is_ladder_jsonl(path):  # one row per rung: the summary, not the raw repeats
            return [{"rung": r.name, "supported": r.supported, "batch": r.batch, "j_per_request": r.j_per_request,
                     "prefill_j": r.prefill_j, "decode_j": r.decode_j, "time_per_batch_s": r.time_s,
                     "mean_power_w": r.mean_power_w, "vs": r.change.below if r.change else None,
                     "energy_ratio": r.change.energy_ratio if r.change else None,
                     "time_ratio": r.change.time_ratio if r.change else None,
                     "power_ratio": r.change.power_ratio if r.change else None,
                     "verdict": r.change.verdict if r.change else None, "flags": ";".join(r.flags)}
                    for r in saved_ladder(path).rungs]
        # read strictly (a corrupt line is a clear error, a torn tail is reported), as `report` does
        read = read_store(path)
        read.emit_warnings("kernelprof report")
        return [_flat(rec) for rec in read.records.values()]
    from kernelprof.outputs.runfile import load_run

    run = load_run(path)
    if run.kind == "profile":
        from kernelprof.profiler import load_profile

        res = load_profile(path)
        return [{"path": p.path, "depth": p.depth, "time_s": p.time_s, "energy_j": p.energy_j,
                 "energy_uncertainty_j": p.energy_uncertainty_j, "mean_power_w": p.mean_power_w,
                 "energy_counter_j": p.energy_counter_j, "counter_diff_pct": p.counter_diff_pct, "method": p.method,
                 "flags": ";".join(f.code for f in p.flags)} for p in (*res.phases, res.total)]
    if run.kind == "llm":
        return [_flat(p) for p in run.payload["result"]["phases"]]
    return [_flat(run.payload)]


def write_csv(path: str | Path, out: TextIO | None = None) -> None:
    rows = rows_of(Path(path))
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    w = csv.DictWriter(out or sys.stdout, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
