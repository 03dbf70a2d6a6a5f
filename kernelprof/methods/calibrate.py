"""`kernelprof calibrate`: fit E = e_flop[dtype] x FLOPs + e_byte x bytes + P_static x time on this card.

Microbenchmarks, each measured by the steady-state method (kernelprof.methods.steady_state):
- a streaming copy (bytes only) gives e_byte;
- a tensor-core GEMM per dtype (bf16, fp16) gives e_flop for that dtype;
- an FMA-bound CUDA kernel (cupy RawKernel: eight independent fp32 FMA chains per thread, no
  memory traffic) gives e_flop for fp32 on the CUDA cores;
- the idle right after work gives P_static.
The fitted model is cached per GPU UUID and driver and used by every later measurement's
"calibrated" estimate.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Callable

from kernelprof.cache import cache_path, write_cached
from kernelprof.gpu.devices import gpu_facts, require_gpu
from kernelprof.errors import MeasurementError
from kernelprof.estimates.energy import EnergyModel, Microbenchmark, fit_energy_model
from kernelprof.methods.steady_state import KernelMeasurement, MeasureConfig, measure_kernel

FMA_SOURCE = r"""
extern "C" __global__ void fma_chains(float* out, int iters) {
    // Eight independent chains keep the FMA pipes busy; nothing touches memory until the end.
    float b = 1.0000001f, c = 1e-7f;
    float x0 = threadIdx.x * 1e-6f, x1 = x0 + 1e-6f, x2 = x0 + 2e-6f, x3 = x0 + 3e-6f;
    float x4 = x0 + 4e-6f, x5 = x0 + 5e-6f, x6 = x0 + 6e-6f, x7 = x0 + 7e-6f;
    for (int i = 0; i < iters; ++i) {
        x0 = fmaf(x0, b, c); x1 = fmaf(x1, b, c); x2 = fmaf(x2, b, c); x3 = fmaf(x3, b, c);
        x4 = fmaf(x4, b, c); x5 = fmaf(x5, b, c); x6 = fmaf(x6, b, c); x7 = fmaf(x7, b, c);
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
}
"""
FMA_CHAINS = 8


@dataclass(frozen=True)
class Calibration:
    model: EnergyModel
    points: tuple[dict, ...]  # each microbenchmark's KernelMeasurement summary
    skipped: tuple[str, ...]  # microbenchmarks that could not run, with why
    created: str


def _summary(name: str, m: KernelMeasurement) -> dict:
    return {"name": name, "time_per_call_s": m.time_per_call_s, "energy_per_call_j": m.energy_per_call_j,
            "energy_ci_j": m.energy_ci_j, "mean_power_w": m.mean_power_w, "idle_power_w": m.idle_power_w,
            "flops": m.flops, "min_bytes": m.min_bytes, "flags": [f.code for f in m.flags]}


def fma_microbenchmark(device: int, iters: int = 4096) -> tuple[Callable[[], None], float]:
    """An FMA-bound cupy kernel and its FLOPs per call; ImportError without cupy."""
    import cupy
    import torch

    sms = gpu_facts(device).sm_count or 132
    blocks, threads = sms * 8, 256
    with cupy.cuda.Device(device):
        kernel = cupy.RawKernel(FMA_SOURCE, "fma_chains")
        out = cupy.empty(blocks * threads, dtype=cupy.float32)
    def run() -> None:
        # On torch's stream current at the call (not at set-up): CUDA events bracket it, and inside
        # a CUDA-graph capture it lands on the capturing stream. Taken once at set-up, the kernel
        # went to the default stream during capture, ran outside the graph, and the replays timed
        # empty graphs (2.7 ns per "call" on an H100, 2026-11-26).
        ts = torch.cuda.current_stream(device)
        try:  # cupy >= 14 wants an object with __cuda_stream__ (a raw pointer raises TypeError)
            stream = cupy.cuda.Stream.from_external(ts)
        except (AttributeError, TypeError):
            stream = cupy.cuda.ExternalStream(ts.cuda_stream)
        kernel((blocks,), (threads,), (out, cupy.int32(iters)), stream=stream)

    return run, 2.0 * FMA_CHAINS * iters * blocks * threads


def calibrate(device: int = 0, *, config: MeasureConfig | None = None,
              progress: Callable[[str], None] | None = None) -> Calibration:
    require_gpu("kernelprof calibrate")
    import torch

    say = progress or (lambda _msg: None)
    cfg = config or MeasureConfig(max_wall_s=8.0)
    facts = gpu_facts(device)
    dev = torch.device("cuda", device)
    points: list[Microbenchmark] = []
    summaries: list[dict] = []
    skipped: list[str] = []
    idles: list[float] = []

    def record(name: str, dtype: str | None, m: KernelMeasurement) -> None:
        summaries.append(_summary(name, m))
        if m.energy_per_call_j is None:
            skipped.append(f"{name}: no energy measured")
            return
        points.append(Microbenchmark(name, dtype, m.flops, m.min_bytes, m.time_per_call_s, m.energy_per_call_j))
        if m.idle_power_w is not None:
            idles.append(m.idle_power_w)

    say("streaming copy (2 GiB)")
    n = 2**29
    src = torch.randn(n, device=dev)
    dst = torch.empty_like(src)
    record("copy", None, measure_kernel(dst.copy_, src, flops=0, bytes=2 * 4 * n, dtype="fp32", name="copy",
                                        device=device, config=cfg))
    del src, dst
    for dtype in (torch.bfloat16, torch.float16):
        key = "bf16" if dtype is torch.bfloat16 else "fp16"
        say(f"{key} GEMM 8192^3")
        a = torch.randn(8192, 8192, device=dev, dtype=dtype)
        b = torch.randn(8192, 8192, device=dev, dtype=dtype)
        record(f"gemm-{key}", key, measure_kernel(torch.matmul, a, b, flops=2 * 8192**3, bytes=3 * 2 * 8192**2,
                                                  dtype=key, name=f"gemm-{key}", device=device, config=cfg))
        del a, b
    say("FMA-bound fp32 kernel")
    try:
        fma, fma_flops = fma_microbenchmark(device)
        record("fma-fp32", "fp32", measure_kernel(fma, flops=fma_flops, bytes=0, dtype="fp32", name="fma-fp32",
                                                  device=device, config=cfg))
    except ImportError:
        skipped.append("fma-fp32: cupy is not installed (pip install cupy-cuda12x); no fp32 CUDA-core energy")
    torch.cuda.empty_cache()
    if not idles:
        raise MeasurementError("no idle power was measured between trials; cannot fit P_static")
    static = sorted(idles)[len(idles) // 2]
    model = fit_energy_model(points, static_power_w=static, gpu_name=facts.name, gpu_uuid=facts.uuid)
    cal = Calibration(model, tuple(summaries), tuple(skipped),
                      _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    write_cached(cache_path("energy-model", facts.uuid, facts.driver_version), model.to_json())
    return cal


def calibration_json(cal: Calibration) -> dict:
    d = asdict(cal)
    d["model"] = cal.model.to_json()
    return d
