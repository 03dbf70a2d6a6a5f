"""Which persistent-TMA GEMM tile configs keep up with cuBLAS on this GPU? (development tool)

Launches the persistent kernel with each candidate config directly (no autotune) at 4096^3 and
8192^3 bf16, interleaved ABBA with cuBLAS over several rounds (the card is power-capped at these
sizes, so its clocks drift; pairing cancels most of it), and prints the median paired ratio.
    PYTHONPATH=. python benchmarks/gemm_configs.py
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import triton  # noqa: E402
import triton.testing  # noqa: E402

from kernels.gemm import triton_gemm as tg  # noqa: E402

CANDIDATES = [  # BLOCK_M, BLOCK_N, BLOCK_K, GROUP_SIZE_M, stages, warps, subtile
    (128, 256, 64, 8, 3, 8, True), (128, 256, 64, 8, 4, 8, True), (128, 256, 64, 8, 3, 8, False),
    (128, 256, 64, 16, 3, 8, True), (128, 128, 64, 8, 4, 8, False), (128, 128, 64, 8, 5, 4, False),
    (128, 128, 128, 8, 3, 8, False), (256, 128, 64, 8, 3, 8, False), (128, 256, 64, 4, 3, 8, True),
]


def run(n: int, cfg) -> tuple[float, float]:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty_like(a)
    bm, bn, bk, g, stages, warps, sub = cfg
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    tg._ensure_tma_allocator()
    grid = (min(sms, triton.cdiv(n, bm) * triton.cdiv(n, bn)),)

    def ours():
        tg._gemm_persistent_tma_kernel[grid](a, b, c, c, c, n, n, n, a.stride(0), b.stride(0), b.stride(1), c.stride(0),
                                             BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_SIZE_M=g, EPILOGUE_SUBTILE=sub,
                                             NUM_SMS=sms, B_K_CONTIGUOUS=False, HAS_SCALES=False,
                                             num_stages=stages, num_warps=warps)

    ours()
    err = ((c.float() - (a.float() @ b.float())).norm() / (a.float() @ b.float()).norm()).item()
    ratios = []
    for i in range(4):
        order = (ours, lambda: torch.matmul(a, b)) if i % 2 == 0 else (lambda: torch.matmul(a, b), ours)
        t = [triton.testing.do_bench(f, warmup=50, rep=120, return_mode="median") for f in order]
        t_ours, t_cub = (t[0], t[1]) if i % 2 == 0 else (t[1], t[0])
        ratios.append(t_cub / t_ours)
    return statistics.median(ratios), err


for n in (4096, 8192):
    for cfg in CANDIDATES:
        try:
            r, err = run(n, cfg)
            print(f"n={n} cfg={cfg} ratio_vs_cublas={r:.3f} relerr={err:.1e}", flush=True)
        except Exception as exc:  # noqa: BLE001 - resource limits rule some tiles out
            print(f"n={n} cfg={cfg} FAILED {type(exc).__name__}: {str(exc)[:120]}", flush=True)
