"""Quick smoke of every registered variant at the issue's benchmark shapes: error vs the first
reference and do_bench median. A development check; benchmarks/kernels.py is the real benchmark.
    PYTHONPATH=. python benchmarks/smoke_kernels.py
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import triton.testing  # noqa: E402

from kernels import get_op  # noqa: E402

CASES = [("gemm", "4096x4096x4096"), ("gemm", "8192x8192x8192"), ("gemm", "16x4096x4096"),
         ("attention", "b=4,h=32,s=4096,d=128"), ("attention", "b=4,h=32,s=4096,d=128,causal"),
         ("decode", "b=16,h=32,kv=8,ctx=8192,d=128"), ("decode", "b=1,h=32,kv=8,ctx=32768,d=128"),
         ("decode", "b=64,h=32,kv=8,ctx=1024,d=128")]
for op_name, shape_text in CASES:
    op = get_op(op_name)
    shape = op.parse_shape(shape_text)
    inputs = op.make_inputs(shape, torch.bfloat16, torch.device("cuda"), 0)
    flops, nbytes = op.flops(shape), op.min_bytes(shape, torch.bfloat16)
    ref = None
    for name, fn in op.variants.items():
        if name in ("eager", "sdpa-math") and op_name == "attention":
            continue
        try:
            out = fn(*inputs)
            if ref is None:
                ref = out.float()
            err = ((out.float() - ref).norm() / ref.norm()).item()
            ms = triton.testing.do_bench(lambda: fn(*inputs), warmup=50, rep=200, return_mode="median")
            print(f"{op_name:9s} {shape_text:32s} {name:18s} {ms * 1e3:9.1f} us  {flops / ms / 1e9:7.1f} TFLOP/s"
                  f"  {nbytes / ms / 1e9:6.3f} TB/s  relerr {err:.2e}", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"{op_name:9s} {shape_text:32s} {name:18s} FAILED {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            traceback.print_exc(limit=2)
    del inputs
    torch.cuda.empty_cache()
