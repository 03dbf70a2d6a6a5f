"""A user-written fused softmax in Triton, measured by kernelprof as the user's own kernel.

    PYTHONPATH=. python -m kernelprof kernel --fn examples.triton_softmax:make_case --shape 8192x8192 --dtype fp16
    PYTHONPATH=. python -m kernelprof compare --fn examples.triton_softmax:make_case --variants torch,triton

`make_case` follows the protocol of kernelprof.methods.user_case: it returns the callable, its
inputs, its FLOPs and its minimum bytes. The kernel is the one of Triton's tutorial 02: one program
per row, the whole row in registers (BLOCK_SIZE = the next power of two of the row length), so the
input is read once and the output written once, against eager PyTorch's max, sub-exp-sum and divide.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernelprof.methods.user_case import UserCase

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


@triton.jit
def softmax_kernel(out_ptr, in_ptr, in_row_stride, out_row_stride, n_cols, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    x = tl.load(in_ptr + row * in_row_stride + cols, mask=mask, other=-float("inf")).to(tl.float32)
    # Subtract the row max before exp: exp of a large logit overflows fp32 otherwise.
    x = x - tl.max(x, axis=0)
    num = tl.exp(x)
    y = num / tl.sum(num, axis=0)
    tl.store(out_ptr + row * out_row_stride + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Row softmax of x: [rows, cols] (last dimension contiguous)."""
    if x.ndim != 2 or x.stride(1) != 1:
        raise ValueError(f"x must be [rows, cols] with contiguous rows, got shape {list(x.shape)} "
                         f"strides {list(x.stride())}")
    rows, cols = x.shape
    out = torch.empty_like(x) if out is None else out
    block = triton.next_power_of_2(cols)
    num_warps = 4 if block <= 2048 else 8 if block <= 8192 else 16
    softmax_kernel[(rows,)](out, x, x.stride(0), out.stride(0), cols, BLOCK_SIZE=block, num_warps=num_warps)
    return out


def parse_shape(text: str | None) -> tuple[int, int]:
    text = text or "8192x8192"
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"softmax shape is ROWSxCOLS, e.g. 8192x8192; got {text!r}") from None
    return rows, cols


def make_case(shape: str | None = None, dtype: str = "fp16", variant: str | None = None,
              device: int | str = 0, seed: int = 0) -> UserCase:
    """variant "triton" (default) or "torch" (torch.softmax, for compare)."""
    rows, cols = parse_shape(shape)
    if dtype not in DTYPES:
        raise ValueError(f"softmax takes {sorted(DTYPES)}, got {dtype!r}")
    dev = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
    g = torch.Generator(device=dev).manual_seed(seed)
    x = torch.randn(rows, cols, device=dev, dtype=DTYPES[dtype], generator=g)
    out = torch.empty_like(x)
    variant = variant or "triton"
    if variant == "triton":
        fn = softmax
    elif variant == "torch":
        fn = lambda x, out: torch.softmax(x, dim=-1)  # noqa: E731 - no out= in torch.softmax; the allocator reuses
    else:
        raise ValueError(f"variants are triton and torch, got {variant!r}")
    # Per element: max, subtract, exp, sum, divide. Minimum bytes: read x once, write y once.
    return UserCase(fn=fn, inputs=(x, out), flops=5.0 * rows * cols, min_bytes=2.0 * x.numel() * x.element_size(),
                    dtype=dtype, name=f"softmax/{variant}", shape=f"{rows}x{cols}", variants=("triton", "torch"))
