"""Decode-attention references: eager attention over the valid part of each sequence (the
correctness oracle), the same batched over the whole batch (what a plain PyTorch model runs), and
torch SDPA over the whole cache with a boolean mask for mixed lengths.

Layout as the Triton kernels: q [batch, q_heads, head_dim]; k_cache, v_cache
[batch, kv_heads, max_len, head_dim]; lengths int32 [batch].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernels.errors import NotSupportedError, ShapeError


def decode_eager(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor, *,
                 sm_scale: float | None = None) -> torch.Tensor:
    """One sequence at a time: scores of the new token against cache positions 0..lengths[b]-1,
    softmax (float32, or float64 for float64 inputs), weighted sum of V. Reads lengths on the host.
    Returns o [batch, q_heads, head_dim] in q's dtype."""
    batch, q_heads, head_dim = q.shape
    kv_heads = k_cache.shape[1]
    if q_heads % kv_heads:
        raise ShapeError(f"q_heads must be a multiple of kv_heads, got {q_heads} and {kv_heads}")
    group = q_heads // kv_heads
    scale = 1.0 / math.sqrt(head_dim) if sm_scale is None else sm_scale
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    out = torch.empty_like(q)
    for b, n in enumerate(lengths.tolist()):
        if not 1 <= n <= k_cache.shape[2]:
            raise ShapeError(f"lengths[{b}] must be in 1..max_len={k_cache.shape[2]}, got {n}")
        k = k_cache[b, :, :n].repeat_interleave(group, dim=0)  # [Hq, n, D]
        v = v_cache[b, :, :n].repeat_interleave(group, dim=0)
        scores = torch.einsum("hd,hnd->hn", q[b], k) * scale  # [Hq, n]
        probs = torch.softmax(scores.to(work), dim=-1).to(q.dtype)
        out[b] = torch.einsum("hn,hnd->hd", probs, v)
    return out


def decode_eager_batched(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor, *,
                         sm_scale: float | None = None) -> torch.Tensor:
    """decode_eager for the whole batch at once, as a plain PyTorch model writes it: scores against
    cache positions 0..max(lengths)-1 materialized [batch, kv_heads, group, n], positions at or past
    each sequence's length masked, float32 softmax, weighted sum of V. Query heads are grouped onto
    their KV head by a view, so K and V are not copied. Reads min and max of lengths on the host (one
    sync per call). V below max(lengths) must be finite even where masked (0 x NaN is NaN), as in a
    zeroed cache; decode_eager, which never reads there, is the oracle. Returns o [batch, q_heads,
    head_dim] in q's dtype."""
    _check_groups(q, k_cache)
    max_len = k_cache.shape[2]
    lo, n = torch.stack(torch.aminmax(lengths)).tolist()
    if lo < 1 or n > max_len:
        raise ShapeError(f"lengths must be in 1..max_len={max_len}, got {lengths.tolist()}")
    # Positions 0..n-1 only (views), masked only where some sequence is shorter than n.
    return _grouped_masked(q, k_cache[:, :, :n], v_cache[:, :, :n], lengths if lo < n else None, sm_scale)


def _check_groups(q: torch.Tensor, k_cache: torch.Tensor) -> None:
    if q.shape[1] % k_cache.shape[1]:
        raise ShapeError(f"q_heads must be a multiple of kv_heads, got {q.shape[1]} and {k_cache.shape[1]}")


def _grouped_masked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths: torch.Tensor | None,
                    sm_scale: float | None) -> torch.Tensor:
    """Scores of q [B, Hq, D] against k [B, KV, n, D] materialized [B, KV, G, n] (query heads grouped
    onto their KV head by a view), positions at or past `lengths` masked (None: no mask), float32
    softmax, weighted sum of v. Returns [B, Hq, D] in q's dtype."""
    batch, q_heads, head_dim = q.shape
    kv_heads, n = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(head_dim) if sm_scale is None else sm_scale
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    qg = q.view(batch, kv_heads, q_heads // kv_heads, head_dim)             # [B, KV, G, D]
    scores = torch.matmul(qg, k.transpose(-1, -2)).to(work) * scale         # [B, KV, G, n]
    if lengths is not None:
        pad = torch.arange(n, device=q.device)[None, :] >= lengths[:, None].long()  # [B, n]
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
    probs = torch.softmax(scores, dim=-1).to(q.dtype)
    return torch.matmul(probs, v).reshape(batch, q_heads, head_dim)


def decode_eager_static(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor, *,
                        sm_scale: float | None = None) -> torch.Tensor:
    """decode_eager_batched without the host read: scores against the whole static cache
    [batch, kv_heads, group, max_len], positions at or past each length masked on the device, so
    a CUDA graph can capture it (as a static-cache PyTorch model with a device mask runs). It reads
    max_len positions per sequence, not max(lengths): up to max_len / length more cache bytes. V
    past the lengths must be finite, as in a zeroed cache. Returns o [batch, q_heads, head_dim]."""
    _check_groups(q, k_cache)
    return _grouped_masked(q, k_cache, v_cache, lengths, sm_scale)


# Masks already built, by lengths tensor: a decode step builds its mask once and every layer reuses
# it, and a timed call (or a CUDA-graph capture, where a host sync is illegal) must not rebuild it.
# Keyed on the tensor's storage address and version counter (bumped by in-place writes); the entry
# holds the tensor itself so that its storage cannot be freed and reused by another.
_MASK_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = {}
_MASK_CACHE_SIZE = 32


def decode_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor | None:
    """Boolean mask [batch, 1, 1, max_len], True where the position is inside the sequence; None when
    every sequence fills the cache (then SDPA needs no mask and every backend may run)."""
    key = (lengths.data_ptr(), lengths._version, max_len, str(lengths.device))
    hit = _MASK_CACHE.get(key)
    if hit is not None and hit[0] is lengths:
        return hit[1]
    mask = (torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None].long())[:, None, None, :]
    capturing = lengths.is_cuda and torch.cuda.is_current_stream_capturing()
    if not capturing and bool((lengths == max_len).all().item()):  # a host sync, once per lengths tensor
        mask = None
    if not capturing:
        if len(_MASK_CACHE) >= _MASK_CACHE_SIZE:
            _MASK_CACHE.pop(next(iter(_MASK_CACHE)))
        _MASK_CACHE[key] = (lengths, mask)
    return mask


_UNSET = object()


def decode_sdpa(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor,
                attn_mask: torch.Tensor | None | object = _UNSET, *, backend: str | None = None,
                sm_scale: float | None = None) -> torch.Tensor:
    """torch SDPA with a query of length 1 over the whole cache, GQA through enable_gqa, a boolean
    mask when lengths differ from max_len. attn_mask: the mask [batch, 1, 1, max_len] (or None for
    full caches) if the caller built it once per step; otherwise `decode_mask(lengths, max_len)`.
    backend: 'flash', 'cudnn', 'efficient', 'math' or None (torch's choice). Raises
    NotSupportedError when the backend cannot run the case. Returns o [batch, q_heads, head_dim]."""
    from torch.nn.attention import sdpa_kernel

    from kernels.attention.reference import sdpa_backend

    mask = decode_mask(lengths, k_cache.shape[2]) if attn_mask is _UNSET else attn_mask
    kwargs = {"enable_gqa": True} if q.shape[1] != k_cache.shape[1] else {}
    q4 = q.unsqueeze(2)  # [B, Hq, 1, D]
    try:
        if backend is None:
            o = F.scaled_dot_product_attention(q4, k_cache, v_cache, attn_mask=mask, scale=sm_scale, **kwargs)
        else:
            with sdpa_kernel(sdpa_backend(backend)):
                o = F.scaled_dot_product_attention(q4, k_cache, v_cache, attn_mask=mask, scale=sm_scale, **kwargs)
    except (RuntimeError, TypeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotSupportedError(f"SDPA backend {backend or 'auto'} cannot run this decode case on {q.device} "
                                f"({q.dtype}, q {list(q.shape)}, cache {list(k_cache.shape)}, "
                                f"{'masked' if mask is not None else 'no mask'}): {msg}") from exc
    return o.squeeze(2)
