"""GPU utilization is not FLOP utilization.

NVML's "GPU utilization" (nvmlDeviceGetUtilizationRates().gpu) is the share of its sample period
during which at least one kernel was running, whatever that kernel did with the GPU. A decode
kernel that keeps the GPU busy streaming the KV cache reads ~100% there while using ~1% of the
tensor cores' peak FLOP/s. `measure_utilization` runs a kernel back to back for a couple of seconds,
samples NVML at ~20 Hz meanwhile, and sets the NVML figure beside the achieved fraction of the
datasheet's peak FLOP/s and memory bandwidth (per-call time from kernelprof.timeline.cuda_timing.time_cuda).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernelprof.gpu import nvml
from kernelprof.errors import UsageError
from kernelprof.estimates.datasheets import datasheet_for, normalize_dtype


@dataclass(frozen=True)
class UtilizationView:
    """NVML utilization while a kernel ran back to back, beside its achieved share of peak."""

    op: str
    variant: str
    shape: str
    dtype: str
    gpu_name: str
    ramp_s: float                        # back-to-back run before sampling started (NVML's window fills)
    window_s: float                      # host seconds during which NVML was sampled
    sample_hz: float
    nvml_t_s: list[float]                # sample times, seconds after the window opened
    nvml_gpu_util_pct: list[int]         # "GPU utilization": time share with a kernel running
    nvml_mem_util_pct: list[int]         # "memory utilization": time share the memory controller was busy
    nvml_gpu_util_median_pct: float | None
    nvml_mem_util_median_pct: float | None
    loop_calls: int                      # calls made during the sampled window
    loop_time_per_call_s: float | None   # GPU time per call back to back (warm L2), CUDA events
    timing: dict[str, Any]               # time_cuda's Timing (L2 flushed between calls)
    time_per_call_s: float               # its median
    flops: int                           # exact FLOPs per call
    min_bytes: int                       # minimum bytes per call
    achieved_flop_s: float
    achieved_bytes_s: float
    peak_flop_s: float | None
    peak_bytes_s: float | None
    flop_fraction: float | None          # achieved / datasheet peak, for the op's dtype
    bandwidth_fraction: float | None
    datasheet_model: str | None
    notes: list[str] = field(default_factory=list)
    method: str = "nvml_utilization_vs_time_cuda"


def fractions_of_peak(flops: int, min_bytes: int, time_s: float, gpu_name: str, dtype: str) -> dict[str, Any]:
    """Achieved FLOP/s and bytes/s and their fractions of the datasheet's peaks (None without an entry)."""
    if time_s <= 0:
        raise UsageError(f"time per call must be positive, got {time_s}")
    sheet = datasheet_for(gpu_name)
    flop_s, bytes_s = flops / time_s, min_bytes / time_s
    peak_f = sheet.peak_flop_s(normalize_dtype(dtype)) if sheet else None
    peak_b = sheet.memory_bandwidth_bytes_s if sheet else None
    return {"achieved_flop_s": flop_s, "achieved_bytes_s": bytes_s, "peak_flop_s": peak_f, "peak_bytes_s": peak_b,
            "flop_fraction": flop_s / peak_f if peak_f else None,
            "bandwidth_fraction": bytes_s / peak_b if peak_b else None,
            "datasheet_model": sheet.model if sheet else None}


class _UtilizationSampler(threading.Thread):
    """Reads NVML's utilization rates every 1/hz s (sleeping between reads) until stopped."""

    def __init__(self, handle: Any, hz: float) -> None:
        super().__init__(daemon=True, name="kernelprof-utilization")
        self.handle, self.period_s = handle, 1.0 / hz
        self.stop_event = threading.Event()
        self.samples: list[tuple[float, int, int]] = []
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                t = time.perf_counter()
                gpu, mem = nvml.utilization_pct(self.handle)
                self.samples.append((t, gpu, mem))
                self.stop_event.wait(max(0.0, self.period_s - (time.perf_counter() - t)))
        except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
            self.error = exc


def _nvml_handle(device_index: int) -> tuple[Any, str]:
    from kernelprof.gpu.devices import gpu_facts

    facts = gpu_facts(device_index)
    h = nvml.handle_by_uuid(facts.uuid) if facts.uuid else nvml.handle(facts.nvml_index or 0)
    return h, facts.name


def measure_utilization(op: str, variant: str | None = None, shape: str | None = None, dtype: str = "bf16", *,
                        window_s: float = 2.0, ramp_s: float = 1.0, sample_hz: float = 20.0, seed: int = 0,
                        device_index: int = 0) -> UtilizationView:
    """Run the kernel back to back for ramp_s + window_s, sampling NVML over the last window_s."""
    if window_s <= 0 or ramp_s < 0 or not 0 < sample_hz <= 100:
        raise UsageError(f"need window_s > 0, ramp_s >= 0 and 0 < sample_hz <= 100; got {window_s}, {ramp_s}, {sample_hz}")
    from kernelprof.methods.ops import resolve_kernel
    from kernelprof.gpu.devices import require_gpu

    req = resolve_kernel(op, variant, shape, dtype)  # bad input says so, also without a GPU
    require_gpu("kernelprof utilization")
    import torch

    from kernelprof.timeline.cuda_timing import time_cuda

    spec, shape_obj, variant, tdt = req.op, req.shape, req.variant, req.torch_dtype
    fn = spec.variants[variant]
    h, gpu_name = _nvml_handle(device_index)
    device = torch.device("cuda", device_index)
    torch.cuda.set_device(device)
    inputs = spec.make_inputs(shape_obj, tdt, device, seed)
    for _ in range(3):  # compile, autotune
        fn(*inputs)
    torch.cuda.synchronize()
    timing = time_cuda(fn, *inputs)
    # Chunks of ~20 ms of GPU work; at most two chunks queued, so the GPU never waits for the host
    # and the host never runs seconds ahead of it.
    per_chunk = max(1, int(0.02 / max(timing.median_s, 1e-7)))
    sampler = _UtilizationSampler(h, sample_hz)
    pending: list[torch.cuda.Event] = []
    calls = 0
    mark_event = mark_calls = mark_t = None
    t0 = time.perf_counter()
    sampler.start()
    try:
        while True:
            now = time.perf_counter() - t0
            if now >= ramp_s + window_s:
                break
            for _ in range(per_chunk):
                fn(*inputs)
            calls += per_chunk
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            pending.append(ev)
            if mark_event is None and now >= ramp_s:
                mark_event, mark_calls, mark_t = ev, calls, time.perf_counter()
            while len(pending) > 2:
                pending.pop(0).synchronize()
        torch.cuda.synchronize()
        end_t = time.perf_counter()
    finally:
        sampler.stop_event.set()
        sampler.join(timeout=5)
    if sampler.error is not None:
        raise sampler.error
    notes: list[str] = []
    if mark_event is None:  # a window shorter than one chunk: sample the whole run
        mark_event, mark_calls, mark_t = None, 0, t0
        notes.append("the run was shorter than the ramp: samples cover the ramp too")
    loop_calls = calls - mark_calls
    loop_per_call = (mark_event.elapsed_time(pending[-1]) / 1e3 / loop_calls
                     if mark_event is not None and loop_calls > 0 and pending[-1] is not mark_event else None)
    kept = [(t - mark_t, g, m) for t, g, m in sampler.samples if mark_t <= t <= end_t]
    if not kept:
        notes.append("no NVML sample fell inside the window")
    gpu = [g for _, g, _ in kept]
    mem = [m for _, _, m in kept]
    flops, min_bytes = int(spec.flops(shape_obj)), int(spec.min_bytes(shape_obj, tdt))
    frac = fractions_of_peak(flops, min_bytes, timing.median_s, gpu_name, dtype)
    if frac["datasheet_model"] is None:
        notes.append(f"no datasheet entry for '{gpu_name}': fractions of peak are unavailable")
    return UtilizationView(
        op=op, variant=variant, shape=str(shape_obj), dtype=normalize_dtype(dtype), gpu_name=gpu_name,
        ramp_s=ramp_s, window_s=end_t - mark_t, sample_hz=sample_hz,
        nvml_t_s=[round(t, 4) for t, _, _ in kept], nvml_gpu_util_pct=gpu, nvml_mem_util_pct=mem,
        nvml_gpu_util_median_pct=float(np.median(gpu)) if gpu else None,
        nvml_mem_util_median_pct=float(np.median(mem)) if mem else None,
        loop_calls=loop_calls, loop_time_per_call_s=loop_per_call, timing=timing.to_json(),
        time_per_call_s=timing.median_s, flops=flops, min_bytes=min_bytes, notes=notes, **frac)
