"""Attention references: a readable eager implementation that materializes the scores (the
"unoptimized" baseline and the correctness oracle), and torch SDPA pinned to one backend.

Layout as the Triton kernel: q [batch, q_heads, q_len, head_dim], k and v
[batch, kv_heads, kv_len, head_dim], q_heads a multiple of kv_heads.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernels.errors import NotSupportedError, ShapeError


def attention_eager(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, *,
                    sm_scale: float | None = None) -> torch.Tensor:
    """softmax(Q K^T * scale, masked) V, step by step, with the [batch, q_heads, q_len, kv_len] score
    matrix in memory. Softmax runs in float32 (float64 stays float64). Causal: top-left aligned,
    query i sees keys 0..i. Returns o [batch, q_heads, q_len, head_dim] in q's dtype."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ShapeError(f"q, k, v must be [batch, heads, seq_len, head_dim], got {list(q.shape)}, "
                         f"{list(k.shape)}, {list(v.shape)}")
    q_heads, kv_heads = q.shape[1], k.shape[1]
    if q_heads % kv_heads:
        raise ShapeError(f"q_heads must be a multiple of kv_heads, got {q_heads} and {kv_heads}")
    group = q_heads // kv_heads
    k = k.repeat_interleave(group, dim=1)  # [B, Hq, Sk, D]
    v = v.repeat_interleave(group, dim=1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # [B, Hq, Sq, Sk]
    if causal:
        sq, sk = q.shape[2], k.shape[2]
        visible = torch.ones(sq, sk, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~visible, float("-inf"))
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    probs = torch.softmax(scores.to(work), dim=-1).to(q.dtype)
    return torch.matmul(probs, v)


_BACKENDS = {"flash": "FLASH_ATTENTION", "cudnn": "CUDNN_ATTENTION", "efficient": "EFFICIENT_ATTENTION",
             "math": "MATH"}


def sdpa_backend(name: str):
    """The torch.nn.attention.SDPBackend for 'flash', 'cudnn', 'efficient' or 'math'."""
    from torch.nn.attention import SDPBackend

    member = getattr(SDPBackend, _BACKENDS[name], None)
    if member is None:
        raise NotSupportedError(f"this torch ({torch.__version__}) has no SDPA backend {name!r}")
    return member


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, *, backend: str | None = None,
         attn_mask: torch.Tensor | None = None, sm_scale: float | None = None) -> torch.Tensor:
    """torch.nn.functional.scaled_dot_product_attention, restricted to one backend ('flash', 'cudnn',
    'efficient', 'math') or torch's own choice (None). GQA uses enable_gqa (torch >= 2.5).
    Raises NotSupportedError when the backend cannot run the case on this machine."""
    from torch.nn.attention import sdpa_kernel

    kwargs = {}
    if q.shape[1] != k.shape[1]:
        kwargs["enable_gqa"] = True
    try:
        if backend is None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal, scale=sm_scale, **kwargs)
        with sdpa_kernel(sdpa_backend(backend)):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal, scale=sm_scale,
                                                  **kwargs)
    except (RuntimeError, TypeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotSupportedError(f"SDPA backend {backend or 'auto'} cannot run this case on {q.device} "
                                f"({q.dtype}, q {list(q.shape)}, k {list(k.shape)}): {msg}") from exc
