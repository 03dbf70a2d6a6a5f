"""An FMA-bound microbenchmark for `kernelprof calibrate` (kernelprof.methods.calibration_suite).

An FMA-bound CUDA kernel (cupy RawKernel: eight independent fp32 FMA chains per thread, no memory
traffic) is the calibration's purest fp32 CUDA-core point. The suite, the fit and the cache live
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
"""
FMA_CHAINS = 8


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
