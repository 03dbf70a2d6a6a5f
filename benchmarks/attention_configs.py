"""Which attention tile configs keep up with cuDNN on this GPU? (development tool)

Launches kernels/attention/triton_flash.py with each of `attention_configs()` directly (no autotune),
pointer loads and TMA, at B4 H32 S4096 D128 bf16 causal and non-causal, interleaved ABBA with torch
SDPA's cuDNN backend over 4 rounds (the card may be power-capped; pairing cancels most of the drift),
and prints each config's median paired ratio (cuDNN time / ours: above 1 is faster than cuDNN), its
TFLOP/s and its error against SDPA. Prints only; the headline figures are benchmarks/kernels.py's.
    PYTHONPATH=. python benchmarks/attention_configs.py [--rounds 4]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import triton.testing  # noqa: E402

from kernels.attention import flash_attention, sdpa  # noqa: E402
from kernels.attention.counts import attention_flops  # noqa: E402
from kernels.attention.triton_flash import HAS_TENSOR_DESCRIPTOR, attention_configs  # noqa: E402


def _label(cfg) -> str:
    kw = cfg.kwargs
    return (f"{kw['BLOCK_M']}x{kw['BLOCK_N']} s{cfg.num_stages} w{cfg.num_warps}"
            f"{' fold' if kw.get('FOLD_SCALE') else ''}{' pipe' if kw.get('PIPELINE_QK') else ''}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/attention_configs.py needs a CUDA GPU", file=sys.stderr)
        return 2
    b, h, s, d = 4, 32, 4096, 128
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(b, h, s, d, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
    tma_modes = [False, True] if HAS_TENSOR_DESCRIPTOR and torch.cuda.get_device_capability()[0] >= 9 else [False]
    for causal in (False, True):
        flops = attention_flops(b, h, s, s, d, causal)
        ref = sdpa(q, k, v, causal, backend="cudnn")
        def vendor():
            return sdpa(q, k, v, causal, backend="cudnn")
        for cfg in attention_configs(with_rejected=True):
            for tma in tma_modes:
                name = f"{'causal' if causal else 'full'} {_label(cfg)}{' tma' if tma else ''}"
                try:
                    def ours():
                        return flash_attention(q, k, v, causal, use_tma=tma, config=cfg)
                    o = ours()
                    err = float((o.float() - ref.float()).norm() / ref.float().norm())
                    ratios, times = [], []
                    for i in range(args.rounds):
                        pair = (ours, vendor) if i % 2 == 0 else (vendor, ours)
                        t = [triton.testing.do_bench(f, warmup=10, rep=60, return_mode="median") for f in pair]
                        t_ours, t_vendor = (t[0], t[1]) if i % 2 == 0 else (t[1], t[0])
                        ratios.append(t_vendor / t_ours)
                        times.append(t_ours)
                    tflops = flops / (statistics.median(times) * 1e-3) / 1e12
                    print(f"{name:40s} ratio_vs_cudnn={statistics.median(ratios):.3f} ours={tflops:.0f} TFLOP/s "
                          f"relerr={err:.1e}", flush=True)
                except Exception as exc:  # noqa: BLE001 - resource limits rule some tiles out
                    print(f"{name:40s} failed: {type(exc).__name__}: {str(exc)[:160]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
