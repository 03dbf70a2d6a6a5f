"""What this card really does: copy bandwidth and matmul throughput, measured and cached per GPU.

Datasheet peaks (kernelprof.estimates.datasheets) are promises; roofline fractions are more honest against these.
The copy counts bytes read plus bytes written; the matmuls run on random data (zeros run faster
and would flatter the card).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any

from kernelprof.cache import cache_path, read_cached, write_cached
from kernelprof.gpu.devices import gpu_facts, require_gpu
from kernelprof.timeline.cuda_timing import time_cuda

CACHE_VERSION = 1
COPY_BYTES = 2 * 2**30  # 2 GiB source: far past L2, long enough that launch cost vanishes
MATMUL_N = 8192


@dataclass(frozen=True)
class Ceilings:
    """Measured ceilings of one GPU, with how they were measured."""

    gpu_name: str
    gpu_uuid: str | None
    driver_version: str | None
    copy_bytes_s: float  # (read + written) bytes per second of a device-to-device copy
    bf16_matmul_flop_s: float
    fp16_matmul_flop_s: float
    copy_size_bytes: int
    matmul_shape: tuple[int, int, int]
    measured_at: str
    method: str = "torch copy_ and torch.matmul, CUDA-event median, L2 flushed"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["matmul_shape"] = list(self.matmul_shape)
        d["cache_version"] = CACHE_VERSION
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Ceilings":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["matmul_shape"] = tuple(d["matmul_shape"])
        return cls(**d)


def measure_ceilings(device_index: int = 0) -> Ceilings:
    """Measure copy bandwidth and bf16/fp16 matmul throughput on CUDA device `device_index`."""
    require_gpu("kernelprof ceilings")
    import torch

    facts = gpu_facts(device_index)
    with torch.cuda.device(device_index):
        n = COPY_BYTES // 4
        src = torch.randn(n, device="cuda", dtype=torch.float32)
        dst = torch.empty_like(src)
        t_copy = time_cuda(dst.copy_, src, cache="none", budget_ms=400)
        copy_bytes_s = 2 * COPY_BYTES / t_copy.median_s
        del src, dst

        flops = 2 * MATMUL_N**3
        rates = {}
        for dtype in (torch.bfloat16, torch.float16):
            a = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=dtype)
            b = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=dtype)
            t = time_cuda(torch.matmul, a, b, cache="none", warmup_ms=200, budget_ms=600)
            rates[dtype] = flops / t.median_s
            del a, b
        torch.cuda.empty_cache()

    return Ceilings(
        gpu_name=facts.name, gpu_uuid=facts.uuid, driver_version=facts.driver_version,
        copy_bytes_s=copy_bytes_s, bf16_matmul_flop_s=rates[torch.bfloat16],
        fp16_matmul_flop_s=rates[torch.float16], copy_size_bytes=COPY_BYTES,
        matmul_shape=(MATMUL_N, MATMUL_N, MATMUL_N),
        measured_at=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def ceilings_cache_path(uuid: str | None, driver: str | None):
    return cache_path("ceilings", uuid, driver)


def load_cached_ceilings(uuid: str | None, driver: str | None) -> Ceilings | None:
    doc = read_cached(ceilings_cache_path(uuid, driver))
    if not doc or doc.get("cache_version") != CACHE_VERSION:
        return None
    try:
        return Ceilings.from_json(doc)
    except (KeyError, TypeError):
        return None


def get_ceilings(device_index: int = 0, *, refresh: bool = False) -> tuple[Ceilings, bool]:
    """Cached ceilings for this GPU (UUID and driver), measuring them if absent or `refresh`.

    Returns (ceilings, came_from_cache).
    """
    require_gpu("kernelprof ceilings")
    facts = gpu_facts(device_index)
    if not refresh:
        cached = load_cached_ceilings(facts.uuid, facts.driver_version)
        if cached is not None:
            return cached, True
    measured = measure_ceilings(device_index)
    write_cached(ceilings_cache_path(facts.uuid, facts.driver_version), measured.to_json())
    return measured, False
