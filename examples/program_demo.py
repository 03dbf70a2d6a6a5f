"""A small GPU program with NVTX ranges, for `kernelprof run` (needs a CUDA GPU).

    PYTHONPATH=. python -m kernelprof run -o runs/program_demo.json -- python examples/program_demo.py --seconds 12

Each step runs a bf16 GEMM burst, a device copy and a softmax in random proportions, inside the
nested NVTX ranges step/{matmul, copy, softmax}; the random mix is what lets the window regression
tell the kernels apart. It is plain PyTorch: it runs the same way without kernelprof.
"""
from __future__ import annotations

import argparse
import random
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--n", type=int, default=8192, help="GEMM size (n x n x n, bf16)")
    args = ap.parse_args()
    rng = random.Random(0)
    dev = "cuda"
    with torch.cuda.nvtx.range("setup"):
        a = torch.randn(args.n, args.n, device=dev, dtype=torch.bfloat16)
        b = torch.randn(args.n, args.n, device=dev, dtype=torch.bfloat16)
        src = torch.empty(1 << 28, device=dev, dtype=torch.uint8)  # 256 MiB copies
        dst = torch.empty_like(src)
        logits = torch.randn(8192, 32768, device=dev, dtype=torch.float16)
        torch.cuda.synchronize()
    t_end = time.perf_counter() + args.seconds
    while time.perf_counter() < t_end:
        torch.cuda.nvtx.range_push("step")
        with torch.cuda.nvtx.range("matmul"):
            for _ in range(rng.randint(0, 12)):
                c = a @ b
        with torch.cuda.nvtx.range("copy"):
            for _ in range(rng.randint(0, 12)):
                dst.copy_(src)
        with torch.cuda.nvtx.range("softmax"):
            for _ in range(rng.randint(0, 6)):
                p = torch.softmax(logits, dim=-1)
        torch.cuda.synchronize()  # the host waits each step, as a training loop's logging would
        torch.cuda.nvtx.range_pop()
    del c, p


if __name__ == "__main__":
    main()
