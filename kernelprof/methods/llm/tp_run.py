"""`kernelprof llm --tp N`: the generate loop tensor-parallel over N GPUs, per-GPU energy per phase.

Launched by torchrun (torch.distributed.run); `launch_under_torchrun` re-executes the same command
line under it when kernelprof was started directly. Every rank samples its own GPU with its own
Profiler (CUDA index LOCAL_RANK, matched to NVML by UUID), records the same phases, and sends its
`RankRecord` and its Perfetto events to rank 0, which writes one run file holding all ranks and one
trace with a process per GPU. In-run only: the steady-state cross-checks of `kernelprof llm` are
not run under TP.

NCCL_NVLS_ENABLE=0 is always set: NVLink SHARP (multicast) on the shared machines has taken the
host's GPUs out of service.
"""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kernelprof.errors import UsageError
from kernelprof.methods.llm.tp_ranks import RankPhase, RankRecord, TPResult, clock_offsets_ns, kernel_class, merge_ranks

NCCL_ENV = {"NCCL_NVLS_ENABLE": "0"}


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def check_launch(tp: int, visible_gpus: int) -> None:
    if tp > visible_gpus:
        raise UsageError(f"--tp {tp} needs {tp} GPUs on this host; {visible_gpus} are visible "
                         "(CUDA_VISIBLE_DEVICES, or a smaller machine)")
    if importlib.util.find_spec("torch.distributed.run") is None:
        raise UsageError("--tp > 1 needs torchrun (torch.distributed.run), which this torch lacks")


def launch_under_torchrun(tp: int, argv: list[str]) -> int:
    """Run `python -m torch.distributed.run --nproc-per-node tp -m kernelprof <argv>`; its exit code."""
    import torch

    check_launch(tp, torch.cuda.device_count())
    env = {**os.environ, **NCCL_ENV}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={tp}",
           "-m", "kernelprof", *argv]
    return subprocess.call(cmd, env=env)


def _phase_records(res: Any, timeline: Any, kernels: Any) -> tuple[RankPhase, ...]:
    by_name: dict[str, list[Any]] = {}
    for p in res.phases:
        if p.depth == 0:
            by_name.setdefault(p.name, []).append(p)
    first = {}
    for iv in timeline.intervals:
        if iv.depth == 0 and iv.name not in first:
            first[iv.name] = iv.t0_ns
    out = []
    for name, ps in by_name.items():
        t = sum(p.time_s for p in ps)
        e = None if any(p.energy_j is None for p in ps) else sum(p.energy_j for p in ps)
        classes = None
        if kernels is not None:
            import numpy as np

            classes = {}
            ivs = [iv for iv in timeline.intervals if iv.depth == 0 and iv.name == name]
            for iv in ivs:
                sel = np.flatnonzero((kernels.start_ns >= iv.t0_ns) & (kernels.start_ns < iv.t1_ns))
                for k in sel.tolist():
                    c = kernel_class(kernels.names[int(kernels.name_index[k])])
                    classes[c] = classes.get(c, 0.0) + float(kernels.end_ns[k] - kernels.start_ns[k]) / 1e9
        out.append(RankPhase(name, t, e, None if e is None or not t else e / t, int(first.get(name, 0)), classes))
    return tuple(out)


def run_tp_llm(model_name: str, tp: int, batch: int, input_len: int, output_len: int, *, mode: str = "optimized",
               gemm: str = "cublas", requests: int = 3, seed: int = 0, kernel_slices: bool = False,
               out_prefix: str | None = None) -> TPResult | None:
    """One rank's part (call on every rank under torchrun); rank 0 returns the merged result."""
    import torch
    import torch.distributed as dist

    from kernelprof.gpu.devices import gpu_facts
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.generate import DecodeGraph, GenerateShape, generate, random_prompt
    from kernelprof.methods.llm.tensor_parallel import build_tp_model, check_tp
    from kernelprof.outputs.perfetto import chrome_trace
    from kernelprof.profiler import Profiler

    os.environ.update(NCCL_ENV)
    if not under_torchrun():
        raise UsageError("run_tp_llm runs on every rank under torchrun; use `kernelprof llm --tp N`")
    world, rank, local = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if world != tp:
        raise UsageError(f"--tp {tp} but torchrun started {world} processes; pass --nproc-per-node {tp}")
    cfg = get_config(model_name)
    check_tp(cfg, tp)
    torch.cuda.set_device(local)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    try:
        shape = GenerateShape(batch, input_len, output_len)
        model = build_tp_model(cfg, tp=tp, rank=rank, batch=batch, max_len=shape.max_len, device=f"cuda:{local}",
                               seed=seed, attention="triton" if mode == "optimized" else "eager", gemm=gemm)
        prompt = random_prompt(cfg, shape, device=f"cuda:{local}", seed=seed)
        dist.broadcast(prompt, src=0)  # one prompt for all ranks, whatever each GPU's generator drew
        graph = DecodeGraph(model, input_len, shape.decode_steps) if mode == "optimized" and shape.decode_steps else None
        generate(model, prompt, shape, mode, graph=graph)  # warm-up: compile, autotune, NCCL communicators
        torch.cuda.synchronize()

        def gather(v: int) -> list[int]:
            got: list = [None] * world
            dist.all_gather_object(got, v)
            return got

        offsets = clock_offsets_ns(dist.barrier, gather)
        dist.barrier()
        t0 = time.perf_counter()
        with Profiler(gpus=[local], kernels=kernel_slices) as prof:
            for _ in range(requests):
                generate(model, prompt, shape, mode, prof=prof, graph=graph)
        wall_s = time.perf_counter() - t0
        res = prof.result()
        facts = gpu_facts(local)
        host = os.environ.get("KERNELPROF_HOSTNAME") or socket.gethostname()
        rec = RankRecord(rank, world, host, local, facts.uuid or f"cuda:{local}", facts.name, offsets[rank],
                         _phase_records(res, prof.timeline, prof.kernels if kernel_slices else None),
                         res.total.energy_j, res.total.energy_counter_j,
                         tuple(sorted({f.code for f in res.total.flags})))
        events = chrome_trace(prof.trace, prof.timeline, title=f"rank {rank}",
                              kernels=prof.kernels if kernel_slices else None)
        t_start_us = int(prof.trace.start_t_us) - offsets[rank] // 1000
        recs: list | None = [None] * world if rank == 0 else None
        traces: list | None = [None] * world if rank == 0 else None
        dist.gather_object(rec.to_json(), recs, dst=0)
        dist.gather_object((t_start_us, events), traces, dst=0)
    finally:
        dist.destroy_process_group()
    if rank != 0:
        return None
    records = [RankRecord.from_json(d) for d in recs]
    phases, notes = merge_ranks(records, requests=requests)
    e_req = [p.energy_total_j for p in phases]
    result = TPResult(model_name, mode, tp, batch, input_len, output_len, requests, tuple(records), phases,
                      sum(p.time_s for p in phases) / requests,
                      None if None in e_req else sum(e_req) / requests,
                      notes + (f"wall {wall_s:.2f} s for {requests} requests on rank 0",
                               "NCCL_NVLS_ENABLE=0 (NVLink SHARP off)"))
    if out_prefix:
        write_outputs(out_prefix, result, traces)
    return result


def merged_trace(traces: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """One Perfetto document, a process group per rank, on rank 0's clock (each trace's own t0 shifted)."""
    t0 = min(t for t, _ in traces)
    events: list[dict[str, Any]] = []
    for rank, (t_us, doc) in enumerate(traces):
        shift = t_us - t0
        for ev in doc["traceEvents"]:
            ev = dict(ev, pid=(rank + 1) * 10_000 + int(ev.get("pid", 0)))
            if "ts" in ev:
                ev["ts"] = ev["ts"] + shift
            if ev.get("name") == "process_name":
                ev["args"] = {"name": f"rank {rank}: {ev['args']['name']}"}
            events.append(ev)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"clock": "rank 0's epoch microseconds minus the earliest trace start", "start_t_us": t0,
                          "ranks": [doc.get("otherData", {}) for _, doc in traces]}}


def write_outputs(prefix: str, result: TPResult, traces: list[tuple[int, dict[str, Any]]]) -> tuple[Path, Path]:
    import json

    from kernelprof.outputs.runfile import save_run

    run_path = save_run(f"{prefix}.json", "llm-tp", {"result": result.to_json()})
    trace_path = Path(f"{prefix}.trace.json")
    trace_path.write_text(json.dumps(merged_trace(traces), separators=(",", ":")))
    return run_path, trace_path
