"""An FMA-bound microbenchmark for `kernelprof calibrate` (kernelprof.methods.calibration_suite).

An FMA-bound CUDA kernel (cupy RawKernel: eight independent fp32 FMA chains per thread, no memory
traffic) is the calibration's purest fp32 CUDA-core point. It comes in two data patterns:
- "static" (`fma_chains`): x = fma(x, b, c) with b = 1.0000001 and c = 1e-7 for the whole loop, so one
  multiplier input never changes and x creeps by ~1e-7 a step: few bits switch. This is the point the
  H200 fit missed at 0.51 (benchmarks/results/logs/calibration-analysis-h200.md);
- "toggle" (`fma_chains_toggle`): each chain alternates two FMAs, x -> b1 x + c1 -> b2 (b1 x + c1) + c2
  with b2 = 1/b1 and c2 = -b2 c1, per-thread b1 in [-1.25, -1.51) and x0 in [0.5, 1.5): x flips between
  two unrelated values (sign and mantissa) and both the multiplier and the addend change at every
  instruction, as operands do in a GEMM on random data. Same instruction count and FLOPs as "static". The suite, the fit and the cache live
in kernelprof.methods.calibration_suite and kernelprof.estimates.energy_fit; this module keeps the kernel.
"""
from __future__ import annotations

from typing import Callable

from kernelprof.gpu.devices import gpu_facts

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

extern "C" __global__ void fma_chains_toggle(float* out, int iters) {
    // Period-2 chains: b1 * b2 = 1 and c2 = -b2 * c1, so x returns (to rounding) every two FMAs while
    // every operand of every FMA differs from the last one's. iters FMAs per chain, as above.
    unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
    float b1 = -(1.25f + (t & 255u) * 0.001f), b2 = 1.0f / b1;
    float c1 = 0.37f + (t & 127u) * 0.0013f, c2 = -b2 * c1;
    float x0 = 0.5f + (t & 1023u) * 0.000977f;
    float x1 = x0 + 0.0371f, x2 = x0 + 0.0713f, x3 = x0 + 0.1093f;
    float x4 = x0 + 0.1459f, x5 = x0 + 0.1801f, x6 = x0 + 0.2203f, x7 = x0 + 0.2551f;
    for (int i = 0; i < iters / 2; ++i) {
        x0 = fmaf(x0, b1, c1); x1 = fmaf(x1, b1, c1); x2 = fmaf(x2, b1, c1); x3 = fmaf(x3, b1, c1);
        x4 = fmaf(x4, b1, c1); x5 = fmaf(x5, b1, c1); x6 = fmaf(x6, b1, c1); x7 = fmaf(x7, b1, c1);
        x0 = fmaf(x0, b2, c2); x1 = fmaf(x1, b2, c2); x2 = fmaf(x2, b2, c2); x3 = fmaf(x3, b2, c2);
        x4 = fmaf(x4, b2, c2); x5 = fmaf(x5, b2, c2); x6 = fmaf(x6, b2, c2); x7 = fmaf(x7, b2, c2);
    }
    out[t] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
}
"""
FMA_KERNELS = {"static": "fma_chains", "toggle": "fma_chains_toggle"}
FMA_CHAINS = 8


def fma_microbenchmark(device: int, iters: int = 4096, data: str = "static") -> tuple[Callable[[], None], float]:
    """An FMA-bound cupy kernel ("static" or "toggle" data, above) and its FLOPs per call; ImportError
    without cupy. `iters` (FMAs per chain) must be even."""
    if data not in FMA_KERNELS:
        raise ValueError(f"data must be one of {sorted(FMA_KERNELS)}, got {data!r}")
    if iters <= 0 or iters % 2:
        raise ValueError(f"iters must be a positive even number, got {iters}")
    import cupy
    import torch

    sms = gpu_facts(device).sm_count or 132
    blocks, threads = sms * 8, 256
    with cupy.cuda.Device(device):
        kernel = cupy.RawKernel(FMA_SOURCE, FMA_KERNELS[data])
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
