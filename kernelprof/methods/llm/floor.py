"""The roofline floor of one generation batch: the least time the model's bytes and FLOPs allow at the
copy bandwidth and matmul rate measured on this card.

Issue 17's end-to-end target is a time per batch within 1.15x of this floor. Per phase the floor is
max(bytes / copy bandwidth, FLOPs / matmul rate), bytes and FLOPs being the model's exact minimum
counts (`model.prefill_min_bytes`, `prefill_flops`, and per decode step at its own context length).
Both rates are measured, not taken from the datasheet: a device-to-device copy and a large bf16 cuBLAS
GEMM, timed with CUDA events in the same process as the run they judge (`measure_rates`).
`kernelprof llm` prints the ratio after each run (`--no-floor` skips it); `benchmarks/llm.py` records it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kernelprof.methods.llm.config import LlamaConfig
from kernelprof.methods.llm.model import decode_step_flops, decode_step_min_bytes, prefill_flops, prefill_min_bytes

COPY_BYTES = 1 << 30        # 1 GiB each way: 20x the L2, so the copy streams from HBM
MATMUL_N = 8192             # bf16 8192^3: cuBLAS's best sustained rate on Hopper, power cap included


@dataclass(frozen=True)
class MeasuredRates:
    """What the floor divides by. `copy_bytes_per_s` counts read + written bytes."""

    copy_bytes_per_s: float
    matmul_flop_s: float
    how: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RooflineFloor:
    """Floor of one batch (B sequences, `input_len` in, `output_len` out), in seconds."""

    prefill_s: float
    decode_s: float                # the output_len - 1 decode steps
    prefill_bound: str             # "bytes" or "flops": which side of the roofline prefill is on
    decode_bytes_bound_steps: int  # decode steps whose floor is their bytes (the rest: FLOPs)
    decode_steps: int
    rates: MeasuredRates

    @property
    def total_s(self) -> float:
        return self.prefill_s + self.decode_s

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["total_s"] = self.total_s
        return d


def roofline_floor(cfg: LlamaConfig, batch: int, input_len: int, output_len: int, rates: MeasuredRates,
                   dtype_bytes: int = 2) -> RooflineFloor:
    """The floor of one batch. The first output token comes from prefill; decode step i (0-based)
    writes position input_len + i and reads input_len + i + 1 cached positions (itself included)."""
    if batch < 1 or input_len < 1 or output_len < 1:
        raise ValueError(f"batch, input_len and output_len must be >= 1, got {batch}, {input_len}, {output_len}")
    if rates.copy_bytes_per_s <= 0 or rates.matmul_flop_s <= 0:
        raise ValueError(f"rates must be positive, got {rates}")
    p_bytes_s = prefill_min_bytes(cfg, batch, input_len, dtype_bytes) / rates.copy_bytes_per_s
    p_flops_s = prefill_flops(cfg, batch, input_len) / rates.matmul_flop_s
    decode_s, bytes_bound = 0.0, 0
    for i in range(output_len - 1):
        ctx = input_len + i + 1
        b_s = decode_step_min_bytes(cfg, batch, ctx, dtype_bytes) / rates.copy_bytes_per_s
        f_s = decode_step_flops(cfg, batch, ctx) / rates.matmul_flop_s
        decode_s += max(b_s, f_s)
        bytes_bound += b_s >= f_s
    return RooflineFloor(max(p_bytes_s, p_flops_s), decode_s, "bytes" if p_bytes_s >= p_flops_s else "flops",
                         bytes_bound, output_len - 1, rates)


def measure_rates(device: int = 0) -> MeasuredRates:
    """The card's copy bandwidth and bf16 matmul rate, by CUDA events (medians; L2 flushed between calls)."""
    import torch

    from kernelprof.timeline.cuda_timing import time_cuda

    dev = torch.device("cuda", device)
    with torch.cuda.device(dev):
        x = torch.empty(COPY_BYTES, dtype=torch.uint8, device=dev)
        y = torch.empty_like(x)
        copy_s = time_cuda(y.copy_, x, budget_ms=200).median_ms / 1e3
        del x, y
        a = torch.randn(MATMUL_N, MATMUL_N, dtype=torch.bfloat16, device=dev)
        b = torch.randn(MATMUL_N, MATMUL_N, dtype=torch.bfloat16, device=dev)
        mm_s = time_cuda(torch.matmul, a, b, budget_ms=400).median_ms / 1e3
        del a, b
        torch.cuda.empty_cache()
    return MeasuredRates(2 * COPY_BYTES / copy_s, 2 * MATMUL_N ** 3 / mm_s,
                         how=f"copy: y.copy_(x) of {COPY_BYTES} bytes ({copy_s * 1e6:.0f} us); matmul: cuBLAS bf16 "
                             f"{MATMUL_N}^3 ({mm_s * 1e3:.2f} ms); CUDA-event medians, L2 flushed")
