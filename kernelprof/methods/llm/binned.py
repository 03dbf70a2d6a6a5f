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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from kernelprof.errors import UsageError
from kernelprof.estimates.energy import paper_estimate_j
from kernelprof.methods.llm.generate import GenerateShape, memory_needed_bytes
from kernelprof.methods.llm.config import LlamaConfig, get_config
from kernelprof.methods.llm.model import decode_step_flops, prefill_flops, weight_bytes
from kernelprof.methods.workloads import Bin, bin_workload, load_workload, workload_energy_j


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
    # From the measured bins, each weighted by requests / batch size like the energy:
    prefill_energy_j: float | None = None
    decode_energy_j: float | None = None
    gpu_time_s: float | None = None      # the phases' time: what serving these requests in batches takes
    j_per_request: float | None = None   # over the requests of measured bins
    wall_s: float | None = None          # this call of run_binned (bins resumed from a file cost nothing)
    paper_peak_convention: str = "headline"  # files without the key were written with the dense peak

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "bins_failed": list(self.bins_failed), "notes": list(self.notes)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BinnedSummary:
        """A workload run's summary; keys added later are optional (older runs lack them)."""
        return cls(**{**d, "bins_failed": tuple(d["bins_failed"]), "notes": tuple(d["notes"]),
                      "paper_peak_convention": d.get("paper_peak_convention", "dense")})


@dataclass(frozen=True)
class BinTotals:
    prefill_energy_j: float | None
    decode_energy_j: float | None
    gpu_time_s: float
    requests: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BinTotals:
        return cls(**d)


def bin_totals(recs: list[dict[str, Any]]) -> BinTotals:
    """Workload totals by phase from per-bin records (status "ok"), weighted by requests / batch."""
    prefill = decode = 0.0
    have_phases = True
    t = 0.0
    n_req = 0
    for r in recs:
        if r.get("status") != "ok":
            continue
        n = r["requests"] / r["batch"]
        t += n * r["time_per_batch_s"]
        n_req += r["requests"]
        ph = r.get("phases") or {}
        e_p = (ph.get("prefill") or {}).get("energy_j")
        e_d = (ph.get("decode") or {}).get("energy_j")
        if e_p is None or (e_d is None and "decode" in ph):
            have_phases = False
            continue
        prefill += n * e_p
        decode += n * (e_d or 0.0)
    return BinTotals(prefill if have_phases else None, decode if have_phases else None, t, n_req)


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


def read_bins(path: Path) -> dict[str, dict[str, Any]]:
    """A workload's bin records by key (jsonl_store's rules); warnings go to stderr."""
    from kernelprof.methods.llm.bin_store import read_bin_store

    read = read_bin_store(Path(path))
    read.emit_warnings()
    return read.records


def predicted_request_s(cfg: LlamaConfig, batch: int, input_len: int, output_len: int, sheet: Any) -> float | None:
    """A rough time for one batch (half the datasheet's FLOP/s, 80% of its bandwidth), only to
    choose how to warm up and how many requests to measure; never reported."""
    if sheet is None or not sheet.peak_flop_s("bf16") or not sheet.memory_bandwidth_bytes_s:
        return None
    t = prefill_flops(cfg, batch, input_len) / (0.5 * sheet.peak_flop_s("bf16"))
    kv_per_token = 2 * cfg.n_layers * cfg.kv_dim * 2
    for i in range(output_len - 1):
        t += (weight_bytes(cfg) + batch * (input_len + i + 1) * kv_per_token) / (0.8 * sheet.memory_bandwidth_bytes_s)
    return t


def run_binned(workload: str, model: str, *, mode: str = "optimized", max_batch: int = 64, out: str | Path,
               resume: bool = False, new_file: bool = False, device: int = 0, profiles_dir: str | Path | None = None,
               on_bin: Callable[[Bin, dict[str, Any]], None] | None = None, other_gpu: bool = False) -> BinnedSummary:
    """Measure every occupied bin (see the module docstring). One model's weights serve every bin;
    bins predicted under 1 s are warmed up by a whole request and repeated for >= 1 s of in-run
    time, longer ones are warmed up by one prefill of the batch and measured once. With `profiles_dir`, each
    bin's profile run is saved there as bin-<input>-<output>.profile.json. A resume must match the
    file's configuration (bin_store.workload_config), checked before the GPU is touched; `other_gpu`
    lets it continue on another card with the same driver, each bin keeping its own card's uuid."""
    from kernelprof.gpu.devices import gpu_facts, require_gpu
    from kernelprof.methods.llm.bin_store import prepare_bins, resume_config, stream_bins, workload_config
    from kernelprof.outputs.jsonl_store import check_resume
    from kernelprof.estimates.datasheets import datasheet_for

    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or not 1 <= max_batch <= 4096:
        raise UsageError(f"max_batch must be an integer in 1..4096, got {max_batch!r}")
    if mode not in ("optimized", "eager"):
        raise UsageError(f"mode must be 'optimized' or 'eager', got {mode!r}")
    cfg = get_config(model)
    w = load_workload(workload)
    binning = bin_workload(w)
    if not binning.bins:
        raise UsageError(f"workload {workload}: every request is longer than the largest bin; nothing to measure")
    out = Path(out)
    read = prepare_bins(out, workload_config(w, model, mode, max_batch), resume=resume, new_file=new_file)
    require_gpu("kernelprof workload")
    facts = gpu_facts(device)
    config = workload_config(w, model, mode, max_batch,
                             gpu={"gpu_uuid": facts.uuid, "driver": facts.driver_version})
    check_resume(read, resume_config(config, other_gpu))
    sheet = datasheet_for(facts.name)
    wall0 = time.perf_counter()
    if profiles_dir is not None:
        profiles_dir = Path(profiles_dir)
        profiles_dir.mkdir(parents=True, exist_ok=True)
    measure_bin = _bin_measurer(cfg, model, mode, max_batch, device, sheet, profiles_dir, out)
    import torch

    with torch.cuda.device(device):
        records = stream_bins(binning, measure_bin, out, read, config, on_bin)
    return summarize_bins(w, binning, records, model, mode, sheet, wall_s=time.perf_counter() - wall0)


def _bin_measurer(cfg: LlamaConfig, model: str, mode: str, max_batch: int, device: int, sheet: Any,
                  profiles_dir: Path | None, out: Path) -> Callable[[Bin], dict[str, Any]]:
    """measure_bin(b) for stream_bins: size the batch, generate in-run, return the record's fields."""
    import torch

    from kernelprof.methods.llm.bin_store import FatalBinError, bin_key
    from kernelprof.methods.llm.generate import build_model
    from kernelprof.methods.llm.run import run_llm
    from kernelprof.outputs.environment import git_revision

    state: dict[str, Any] = {"llama": None}

    def measure_bin(b: Bin) -> dict[str, Any]:
        if state["llama"] is None:
            state["llama"] = build_model(cfg, GenerateShape(1, 1, 1), mode, seed=0)  # weights once
        llama = state["llama"]
        # Drop the previous bin's cache and graphs and hand their blocks back to the driver, so
        # that they count as free when this bin's batch size is chosen; the resident weights are
        # part of what memory_needed_bytes counts.
        llama.resize_cache(1, 2)
        gc.collect()
        torch.cuda.empty_cache()
        free, _ = torch.cuda.mem_get_info(device)
        bs = largest_batch(cfg, b.input_bin, b.output_bin, mode, free + weight_bytes(cfg), max_batch)
        if bs == 0:
            return {"batch": 0, "status": "failed",
                    "error": f"not even one request of {b.input_bin}+{b.output_bin} tokens fits"}
        predicted = predicted_request_s(cfg, bs, b.input_bin, b.output_bin, sheet)
        short = predicted is None or predicted < 1.0
        profile = (str(profiles_dir / f"bin-{b.input_bin}-{b.output_bin}.profile.json")
                   if profiles_dir is not None else None)
        try:
            r = run_llm(model, bs, b.input_bin, b.output_bin, mode=mode, steady=False,
                        min_inrun_s=1.0 if short else 0.0, warmup="full" if short else "prefill",
                        device=device, model=llama, profile_path=profile)
        except Exception as exc:  # noqa: BLE001 - OOM or a failed measurement: record it, unless the GPU is gone
            oom = isinstance(exc, torch.cuda.OutOfMemoryError)
            rec = {"batch": bs, "status": "failed", "error": "out of memory" if oom else f"{type(exc).__name__}: {exc}"}
            try:
                torch.cuda.empty_cache()
                torch.cuda.synchronize(device)
            except Exception as dead:  # noqa: BLE001 - a sticky CUDA error ends this process's GPU use
                raise FatalBinError(
                    f"bin {bin_key(b)} left the GPU unusable ({type(dead).__name__}: {str(dead).splitlines()[0]}); "
                    f"the finished bins are in {out}: rerun with --resume in a new process", rec) from exc
            if oom:
                return rec
            raise
        e = sum(p.energy_inrun_j for p in r.phases if p.energy_inrun_j is not None) / r.requests
        ef = [None if p.estimate("inrun_fit") is None else p.estimate("inrun_fit").energy_j for p in r.phases]
        flops = batch_flops(cfg, bs, b.input_bin, b.output_bin)
        return dict(batch=bs, status="ok", energy_per_batch_j=e,
                    energy_fit_per_batch_j=sum(ef) / r.requests if None not in ef else None,
                    phases={p.name: {"time_s": p.time_s / r.requests,
                                     "energy_j": None if p.energy_inrun_j is None else p.energy_inrun_j / r.requests,
                                     "flags": list(p.flags)} for p in r.phases},
                    time_per_batch_s=sum(p.time_s for p in r.phases) / r.requests,
                    measured_requests=r.requests, wall_s=r.wall_s, flops_per_batch=flops,
                    paper_estimate_per_batch_j=paper_estimate_j(flops, "bf16", sheet),
                    paper_peak_convention="headline", flags=list(r.flags), git_revision=git_revision())

    return measure_bin


def summarize_bins(w: Any, binning: Any, records: list[dict[str, Any]], model: str, mode: str, sheet: Any,
                   wall_s: float | None = None) -> BinnedSummary:
    """The workload's totals from its bin records (ok ones only; the others are listed)."""
    energies: dict[tuple[int, int], float] = {}
    batches: dict[tuple[int, int], int] = {}
    paper_total = 0.0
    failed = []
    for rec in records:
        k = (rec["input_bin"], rec["output_bin"])
        if rec["status"] == "ok":
            energies[k] = rec["energy_per_batch_j"]
            batches[k] = rec["batch"]
            if sheet is None:  # a saved file read without its GPU: the estimate recorded with the bin
                paper = rec.get("paper_estimate_per_batch_j")
            else:
                paper = paper_estimate_j(rec["flops_per_batch"], "bf16", sheet) if rec.get("flops_per_batch") else None
            if paper is not None:
                paper_total += rec["requests"] / rec["batch"] * paper
        else:
            failed.append(rec["key"])
    total, missing = workload_energy_j(binning, energies, batches)
    notes = list(binning.notes) + [f"source: {w.source}",
                                   "paper estimate: TDP / headline bf16 peak (the datasheet's with-sparsity figure, "
                                   "as the paper used) x FLOPs"]
    if missing:
        notes.append(f"bins without a measurement (left out of the total, not guessed): {', '.join(missing)}")
    tot = bin_totals(records)
    return BinnedSummary(workload=w.name, source=w.source, model=model, mode=mode, requests=w.requests,
                         dropped=binning.dropped, bins_measured=len(energies), bins_failed=tuple(failed),
                         energy_j=total, paper_estimate_j=paper_total,
                         ratio=total / paper_total if paper_total else None, notes=tuple(notes),
                         prefill_energy_j=tot.prefill_energy_j, decode_energy_j=tot.decode_energy_j,
                         gpu_time_s=tot.gpu_time_s, j_per_request=total / tot.requests if tot.requests else None,
                         wall_s=wall_s)


def write_workload_trace(profiles: list[tuple[str, Path]], path: str | Path, *, title: str) -> Path | None:
    """One Perfetto trace of a whole workload: every bin's phase slices (named "<bin> prefill" etc.)
    and power/clock/temperature counters on the common NVML epoch clock, from the bins' profile runs.
    Between bins (sizing, warm-up) the counters have no samples: the sampler runs only while a bin is
    measured."""
    from kernelprof.outputs.perfetto import chrome_trace, power_limits_by_uuid
    from kernelprof.outputs.runfile import load_run
    from kernelprof.profiler import load_profile_run

    parts = []
    for label, p in profiles:
        if p.exists():
            r = load_profile_run(p)
            parts.append((label, chrome_trace(r.trace, r.timeline, title=title, kernels=r.kernels,
                                              profiles=r.sensor_profiles or None,
                                              power_limit_w=power_limits_by_uuid(load_run(p).environment))))
    if not parts:
        return None
    t0_us = min(d["otherData"]["start_t_us"] for _, d in parts)
    events, seen_meta = [], set()
    for label, d in parts:
        shift = d["otherData"]["start_t_us"] - t0_us
        for ev in d["traceEvents"]:
            if ev["ph"] == "M":
                key = (ev.get("pid"), ev.get("tid"), ev["name"])
                if key not in seen_meta:
                    seen_meta.add(key)
                    events.append(ev)
                continue
            ev = dict(ev, ts=ev["ts"] + shift)
            if ev["ph"] == "X" and ev.get("pid") == 1:
                ev["name"] = f"{label} {ev['name']}"
                ev["args"] = {**ev.get("args", {}), "bin": label}
            events.append(ev)
    out = {"traceEvents": events, "displayTimeUnit": "ms",
           "otherData": {"clock": "NVML epoch microseconds minus the first bin's start", "start_t_us": t0_us,
                         "power_placement": parts[0][1]["otherData"]["power_placement"],
                         "bins": [label for label, _ in parts],
                         # bins measured in an earlier process whose profile runs are not here
                         "bins_without_profile": [label for label, p in profiles if not p.exists()]}}
    path = Path(path)
    from kernelprof.outputs.safe_paths import atomic_write_text

    atomic_write_text(path, json.dumps(out))
    return path
