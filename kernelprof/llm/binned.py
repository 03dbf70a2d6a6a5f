"""The paper's binned workload energy, measured bin by bin on the Llama-shaped model.

For each occupied (input bin, output bin) of a workload: one batch of requests at the bin's
lengths is generated and measured in-run; the workload's energy is the sum over bins of
(requests in bin / batch size) x (energy of one batch), next to the paper's theoretical estimate
(TDP / peak FLOP/s x FLOPs). Each finished bin is appended to a JSONL file at once, so a crash
or an out-of-memory bin loses nothing already measured, and `resume` skips finished bins.
"""
from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kernelprof.errors import UsageError
from kernelprof.llm.generate import GenerateShape, memory_needed_bytes
from kernelprof.llm.model import LlamaConfig, decode_step_flops, get_config, prefill_flops
from kernelprof.workloads import Bin, bin_workload, load_workload, workload_energy_j


@dataclass(frozen=True)
class BinnedSummary:
    workload: str
    source: str
    model: str
    mode: str
    requests: int
    dropped: int
    bins_measured: int
    bins_failed: tuple[str, ...]
    energy_j: float
    paper_estimate_j: float
    ratio: float | None
    notes: tuple[str, ...]


def batch_flops(cfg: LlamaConfig, batch: int, input_len: int, output_len: int) -> int:
    return prefill_flops(cfg, batch, input_len) + sum(decode_step_flops(cfg, batch, input_len + i + 1)
                                                      for i in range(output_len - 1))


def largest_batch(cfg: LlamaConfig, input_len: int, output_len: int, mode: str, free_bytes: int, cap: int) -> int:
    """The largest batch (<= cap) whose weights, cache and activations fit in 90% of free memory."""
    lo, hi = 0, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if memory_needed_bytes(cfg, GenerateShape(mid, input_len, output_len), mode) <= 0.9 * free_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _bin_key(b: Bin) -> str:
    return f"{b.input_bin}/{b.output_bin}"


def read_bins(path: Path) -> dict[str, dict[str, Any]]:
    from kernelprof.sweep import read_done

    return read_done(path)


def run_binned(workload: str, model: str, *, mode: str = "optimized", max_batch: int = 64, out: str | Path,
               resume: bool = False, device: int = 0,
               on_bin: Callable[[Bin, dict[str, Any]], None] | None = None) -> BinnedSummary:
    import torch

    from kernelprof.devices import gpu_facts, require_gpu
    from kernelprof.llm.run import run_llm
    from kernelprof.sweep import _drop_torn_tail
    from kernelprof.specs import datasheet_for

    require_gpu("kernelprof workload")
    cfg = get_config(model)
    w = load_workload(workload)
    binning = bin_workload(w)
    if not binning.bins:
        raise UsageError(f"workload {workload}: every request is longer than the largest bin; nothing to measure")
    out = Path(out)
    if out.exists() and not resume:
        raise UsageError(f"{out} exists: pass --resume to continue that workload, or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    if resume:
        _drop_torn_tail(out)
    done = {k: r for k, r in read_bins(out).items() if r.get("status") == "ok"} if resume else {}
    facts = gpu_facts(device)
    sheet = datasheet_for(facts.name)
    peak = sheet.peak_flop_s("bf16") if sheet else None
    energies: dict[tuple[int, int], float] = {}
    batches: dict[tuple[int, int], int] = {}
    paper_total = 0.0
    failed = []
    with out.open("a") as f:
        for b in binning.bins:
            key = _bin_key(b)
            rec = done.get(key)
            if rec is None:
                # The previous bin's model is garbage now; hand its blocks back to the driver so that
                # they count as free when this bin's batch size is chosen.
                gc.collect()
                torch.cuda.empty_cache()
                free, _ = torch.cuda.mem_get_info(device)
                bs = largest_batch(cfg, b.input_bin, b.output_bin, mode, free, max_batch)
                rec = {"key": key, "input_bin": b.input_bin, "output_bin": b.output_bin, "requests": b.requests,
                       "batch": bs}
                if bs == 0:
                    rec.update(status="failed", error=f"not even one request of {b.input_bin}+{b.output_bin} tokens fits")
                else:
                    try:
                        r = run_llm(model, bs, b.input_bin, b.output_bin, mode=mode, steady=False, min_inrun_s=0.0,
                                    device=device)
                        e = sum(p.energy_inrun_j for p in r.phases if p.energy_inrun_j is not None) / r.requests
                        rec.update(status="ok", energy_per_batch_j=e,
                                   time_per_batch_s=sum(p.time_s for p in r.phases) / r.requests,
                                   flops_per_batch=batch_flops(cfg, bs, b.input_bin, b.output_bin),
                                   flags=list(r.flags))
                    except Exception as exc:  # noqa: BLE001 - one bin failing (OOM) must not lose the others
                        oom = isinstance(exc, torch.cuda.OutOfMemoryError)
                        rec.update(status="failed", error="out of memory" if oom else f"{type(exc).__name__}: {exc}")
                        torch.cuda.empty_cache()
                f.write(json.dumps(rec) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if rec["status"] == "ok":
                k = (b.input_bin, b.output_bin)
                energies[k] = rec["energy_per_batch_j"]
                batches[k] = rec["batch"]
                if sheet and peak:
                    paper_total += b.requests / rec["batch"] * sheet.tdp_w / peak * rec["flops_per_batch"]
            else:
                failed.append(key)
            if on_bin:
                on_bin(b, rec)
    total, missing = workload_energy_j(binning, energies, batches)
    notes = list(binning.notes) + [f"source: {w.source}"]
    if missing:
        notes.append(f"bins without a measurement (left out of the total, not guessed): {', '.join(missing)}")
    return BinnedSummary(workload=w.name, source=w.source, model=model, mode=mode, requests=w.requests,
                         dropped=binning.dropped, bins_measured=len(energies), bins_failed=tuple(failed),
                         energy_j=total, paper_estimate_j=paper_total,
                         ratio=total / paper_total if paper_total else None, notes=tuple(notes))
