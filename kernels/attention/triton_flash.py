"""Triton flash-attention forward (prefill): O = softmax(Q K^T * scale [+ causal mask]) V without
materializing the scores.

Layout: q [batch, q_heads, q_len, head_dim], k and v [batch, kv_heads, kv_len, head_dim], with
q_heads a multiple of kv_heads (grouped-query attention: query head h reads KV head
h // (q_heads // kv_heads)). Causal masking is top-left aligned and needs q_len == kv_len.
bf16/fp16 (and fp32, which the GPU's tensor cores compute in tf32); fp32 accumulation.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from kernels.errors import NotSupportedError, ShapeError
from kernels.validate import INTERPRET, check_out, check_tensor, check_triton_device

DTYPES = (torch.bfloat16, torch.float16, torch.float32)
HEAD_DIMS = (16, 32, 64, 128)
_LOG2E = 1.4426950408889634
# Device-side tensor descriptors (TMA on Hopper) exist from Triton 3.3/3.4 on.
HAS_TENSOR_DESCRIPTOR = hasattr(tl, "make_tensor_descriptor") and hasattr(triton, "set_allocator")


@triton.jit
def _attn_block_range(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv, stride_kn, stride_vn, offs_m, offs_d,
                      lo, hi, qk_scale, SEQ_K,
                      HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, MASK_CAUSAL: tl.constexpr,
                      MASK_TAIL: tl.constexpr, USE_TMA: tl.constexpr, FOLD_SCALE: tl.constexpr):
    """Fold key blocks [lo, hi) into the running (acc, l_i, m_i) with the online softmax.

    Scores are kept in the log2 domain (qk_scale = softmax scale * log2(e)) so the exponentials are
    exp2. When a block raises the row maximum from m_i to m_new, what was accumulated so far was
    weighted by 2^(s - m_i); multiplying acc and l_i by alpha = 2^(m_i - m_new) re-weights it to the
    new maximum, so no score is ever kept past its own block.

    USE_TMA: K and V tiles come through tensor descriptors (TMA on Hopper), which zero-fill rows
    past SEQ_K; otherwise through masked pointer loads.
    FOLD_SCALE (unmasked blocks only): take the row maximum of the raw scores and scale it (equal,
    as qk_scale >= 0), then p = 2^(qk * qk_scale - m) in one FMA per score instead of a multiply and
    a subtract: the softmax's FP32 work, not the matmuls, bounds this loop on Hopper.
    """
    offs_n0 = tl.arange(0, BLOCK_N)
    for start_n in range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        offs_n = start_n + offs_n0
        k_ptrs = k_base + offs_n[:, None] * stride_kn + offs_d[None, :]
        v_ptrs = v_base + offs_n[:, None] * stride_vn + offs_d[None, :]
        if USE_TMA:
            k = tl.reshape(k_desc.load([b, h_kv, start_n, 0]), (BLOCK_N, HEAD_DIM))
        elif MASK_TAIL:
            k = tl.load(k_ptrs, mask=offs_n[:, None] < SEQ_K, other=0.0)
        else:
            k = tl.load(k_ptrs)
        qk = tl.dot(q, tl.trans(k))  # [BLOCK_M, BLOCK_N], unscaled
        if FOLD_SCALE and not MASK_CAUSAL and not MASK_TAIL:
            m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            p = tl.math.exp2(qk * qk_scale - m_new[:, None])
        else:
            qk = qk * qk_scale
            if MASK_CAUSAL:
                keep = (offs_m[:, None] >= offs_n[None, :]) & (offs_n[None, :] < SEQ_K)
                qk = tl.where(keep, qk, float("-inf"))
            elif MASK_TAIL:
                qk = tl.where(offs_n[None, :] < SEQ_K, qk, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            p = tl.math.exp2(qk - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        if USE_TMA:
            v = tl.reshape(v_desc.load([b, h_kv, start_n, 0]), (BLOCK_N, HEAD_DIM))
        elif MASK_TAIL:
            v = tl.load(v_ptrs, mask=offs_n[:, None] < SEQ_K, other=0.0)
        else:
            v = tl.load(v_ptrs)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _load_kv_tile(base, desc, b, h_kv, stride_n, start_n, offs_n0, offs_d,
                  HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, USE_TMA: tl.constexpr):
    """One full [BLOCK_N, HEAD_DIM] K or V tile (no tail mask: callers pass only whole blocks)."""
    if USE_TMA:
        t = tl.reshape(desc.load([b, h_kv, start_n, 0]), (BLOCK_N, HEAD_DIM))
    else:
        t = tl.load(base + (start_n + offs_n0)[:, None] * stride_n + offs_d[None, :])
    return t


@triton.jit
def _attn_block_range_pipelined(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv, stride_kn, stride_vn,
                                offs_d, lo, hi, qk_scale,
                                HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, USE_TMA: tl.constexpr):
    """_attn_block_range for whole, unmasked key blocks [lo, hi), with Q K^T issued one block ahead.

    Each iteration starts the next block's scores before the softmax of the current one, so the
    (asynchronous, on Hopper) tensor-core product can run under the FP32 softmax instead of after
    it (FlashAttention-3's intra-warpgroup overlap). The arithmetic is the folded form's, in the
    same order, so results match FOLD_SCALE=True bit for bit; only the schedule differs.
    """
    offs_n0 = tl.arange(0, BLOCK_N)
    if hi > lo:
        k = _load_kv_tile(k_base, k_desc, b, h_kv, stride_kn, lo, offs_n0, offs_d, HEAD_DIM, BLOCK_N, USE_TMA)
        qk = tl.dot(q, tl.trans(k))
        for start_n in range(lo, hi - BLOCK_N, BLOCK_N):
            start_n = tl.multiple_of(start_n, BLOCK_N)
            k_next = _load_kv_tile(k_base, k_desc, b, h_kv, stride_kn, start_n + BLOCK_N, offs_n0, offs_d,
                                   HEAD_DIM, BLOCK_N, USE_TMA)
            qk_next = tl.dot(q, tl.trans(k_next))
            v = _load_kv_tile(v_base, v_desc, b, h_kv, stride_vn, start_n, offs_n0, offs_d, HEAD_DIM, BLOCK_N,
                              USE_TMA)
            acc, l_i, m_i = _folded_softmax_pv(acc, l_i, m_i, qk, v, qk_scale)
            qk = qk_next
        # The peeled last block: its scores are already in qk.
        v = _load_kv_tile(v_base, v_desc, b, h_kv, stride_vn, hi - BLOCK_N, offs_n0, offs_d, HEAD_DIM, BLOCK_N,
                          USE_TMA)
        acc, l_i, m_i = _folded_softmax_pv(acc, l_i, m_i, qk, v, qk_scale)
    return acc, l_i, m_i


@triton.jit
def _folded_softmax_pv(acc, l_i, m_i, qk, v, qk_scale):
    """One unmasked key block's online-softmax update in the folded form (raw scores qk, tile v)."""
    m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
    p = tl.math.exp2(qk * qk_scale - m_new[:, None])
    alpha = tl.math.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, l_i, m_new


@triton.jit
def _attn_unmasked_range(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv, stride_kn, stride_vn, offs_m,
                         offs_d, lo, hi, qk_scale, SEQ_K, HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,
                         USE_TMA: tl.constexpr, FOLD_SCALE: tl.constexpr, PIPELINE_QK: tl.constexpr):
    """Whole, unmasked key blocks [lo, hi) by the loop the config names (pipelined, or plain)."""
    if PIPELINE_QK:
        acc, l_i, m_i = _attn_block_range_pipelined(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv,
                                                    stride_kn, stride_vn, offs_d, lo, hi, qk_scale,
                                                    HEAD_DIM, BLOCK_N, USE_TMA)
    else:
        acc, l_i, m_i = _attn_block_range(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv, stride_kn,
                                          stride_vn, offs_m, offs_d, lo, hi, qk_scale, SEQ_K, HEAD_DIM, BLOCK_N,
                                          False, False, USE_TMA, FOLD_SCALE)
    return acc, l_i, m_i


@triton.jit
def _attn_fwd_kernel(Q, K, V, O, qk_scale,
                     stride_qb, stride_qh, stride_qm,
                     stride_kb, stride_kh, stride_kn,
                     stride_vb, stride_vh, stride_vn,
                     stride_ob, stride_oh, stride_om,
                     BATCH, Q_HEADS, KV_HEADS, GROUP, SEQ_Q, SEQ_K,
                     HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                     CAUSAL: tl.constexpr, USE_TMA: tl.constexpr, FOLD_SCALE: tl.constexpr,
                     PIPELINE_QK: tl.constexpr):
    # Causal rows near the end see the most keys: launch those first so the long programs do not
    # form the tail of the grid.
    if CAUSAL:
        start_m = tl.num_programs(0) - 1 - tl.program_id(0)
    else:
        start_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // Q_HEADS
    h = bh % Q_HEADS
    h_kv = h // GROUP  # grouped-query attention: GROUP query heads share one KV head

    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    k_base = K + b.to(tl.int64) * stride_kb + h_kv * stride_kh
    v_base = V + b.to(tl.int64) * stride_vb + h_kv * stride_vh
    if USE_TMA:
        # 4-D descriptors over [batch, heads, seq, head_dim]: TMA bounds-checks the sequence
        # dimension per head, so ragged tiles read zeros and write nothing past the end.
        q_desc = tl.make_tensor_descriptor(Q, shape=[BATCH, Q_HEADS, SEQ_Q, HEAD_DIM],
                                           strides=[stride_qb, stride_qh, stride_qm, 1],
                                           block_shape=[1, 1, BLOCK_M, HEAD_DIM])
        k_desc = tl.make_tensor_descriptor(K, shape=[BATCH, KV_HEADS, SEQ_K, HEAD_DIM],
                                           strides=[stride_kb, stride_kh, stride_kn, 1],
                                           block_shape=[1, 1, BLOCK_N, HEAD_DIM])
        v_desc = tl.make_tensor_descriptor(V, shape=[BATCH, KV_HEADS, SEQ_K, HEAD_DIM],
                                           strides=[stride_vb, stride_vh, stride_vn, 1],
                                           block_shape=[1, 1, BLOCK_N, HEAD_DIM])
        q = tl.reshape(q_desc.load([b, h, start_m * BLOCK_M, 0]), (BLOCK_M, HEAD_DIM))
    else:
        k_desc = k_base  # unused placeholders
        v_desc = v_base
        q_ptrs = Q + b.to(tl.int64) * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :]
        q = tl.load(q_ptrs, mask=offs_m[:, None] < SEQ_Q, other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    if CAUSAL:
        # Stage 1: key blocks entirely left of this query block are fully visible and fully inside
        # the sequence (they end at start_m*BLOCK_M <= SEQ_Q == SEQ_K): no mask at all.
        diag = start_m * BLOCK_M
        acc, l_i, m_i = _attn_unmasked_range(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv, stride_kn,
                                             stride_vn, offs_m, offs_d, 0, diag, qk_scale, SEQ_K, HEAD_DIM, BLOCK_N,
                                             USE_TMA, FOLD_SCALE, PIPELINE_QK)
        # Stage 2: the diagonal block, where key n is visible to query m iff n <= m (and n < SEQ_K,
        # which also bounds the padding rows past SEQ_Q). Its first key (n = diag) is visible to
        # every row, so no row's maximum stays -inf.
        acc, l_i, m_i = _attn_block_range(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv, stride_kn, stride_vn,
                                          offs_m, offs_d,
                                          diag, tl.minimum(diag + BLOCK_M, SEQ_K), qk_scale, SEQ_K,
                                          HEAD_DIM, BLOCK_N, True, True, USE_TMA, FOLD_SCALE)
    else:
        full = (SEQ_K // BLOCK_N) * BLOCK_N
        acc, l_i, m_i = _attn_unmasked_range(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv, stride_kn,
                                             stride_vn, offs_m, offs_d, 0, full, qk_scale, SEQ_K, HEAD_DIM, BLOCK_N,
                                             USE_TMA, FOLD_SCALE, PIPELINE_QK)
        # The ragged last key block (SEQ_K not a multiple of BLOCK_N), masked.
        acc, l_i, m_i = _attn_block_range(acc, l_i, m_i, q, k_base, v_base, k_desc, v_desc, b, h_kv, stride_kn, stride_vn,
                                          offs_m, offs_d,
                                          full, SEQ_K, qk_scale, SEQ_K, HEAD_DIM, BLOCK_N, False, True, USE_TMA, FOLD_SCALE)

    out = (acc / l_i[:, None]).to(O.dtype.element_ty)
    if USE_TMA:
        o_desc = tl.make_tensor_descriptor(O, shape=[BATCH, Q_HEADS, SEQ_Q, HEAD_DIM],
                                           strides=[stride_ob, stride_oh, stride_om, 1],
                                           block_shape=[1, 1, BLOCK_M, HEAD_DIM])
        o_desc.store([b, h, start_m * BLOCK_M, 0], tl.reshape(out, (1, 1, BLOCK_M, HEAD_DIM)))
    else:
        o_ptrs = O + b.to(tl.int64) * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :]
        tl.store(o_ptrs, out, mask=offs_m[:, None] < SEQ_Q)


# Under the interpreter one config runs; tests flip these to cover every loop form.
INTERPRET_FOLD_SCALE = True
INTERPRET_PIPELINE_QK = False


def _attn_configs() -> list[triton.Config]:
    if INTERPRET:
        return [triton.Config({"BLOCK_M": 32, "BLOCK_N": 16, "FOLD_SCALE": INTERPRET_FOLD_SCALE,
                               "PIPELINE_QK": INTERPRET_PIPELINE_QK})]
    # BLOCK_M must be a multiple of BLOCK_N (the causal diagonal stage walks BLOCK_M/BLOCK_N blocks).
    # The four unfolded configs, and the two largest tiles folded (FOLD_SCALE); the autotuner keeps
    # whichever times faster. Not all four folded: every new sequence length compiles each config.
    tiles = [({"BLOCK_M": 128, "BLOCK_N": 128}, 3, 8), ({"BLOCK_M": 128, "BLOCK_N": 64}, 3, 8),
             ({"BLOCK_M": 128, "BLOCK_N": 64}, 4, 8), ({"BLOCK_M": 64, "BLOCK_N": 64}, 3, 4)]
    # Folding measured +3.4% non-causal and +0.7% causal on 128x64 (H100, 2026-12-07).
    return ([triton.Config({**tile, "FOLD_SCALE": False, "PIPELINE_QK": False}, num_stages=st, num_warps=w)
             for tile, st, w in tiles]
            + [triton.Config({**tile, "FOLD_SCALE": True, "PIPELINE_QK": False}, num_stages=st, num_warps=w)
               for tile, st, w in tiles[:2]])


def _pipelined_configs() -> list[triton.Config]:
    """PIPELINE_QK holds a second score tile in registers, so only the 64-wide key tiles run it
    (128 x 64 fp32 = 32 registers a thread at 8 warps). Out of the autotuner since it measured
    10.6% (non-causal) and 11.8% (causal) slower than the same tiles unpipelined (H100, 2026-12-07,
    benchmarks/attention_configs.py): each new sequence length would compile them for nothing.
    Kept runnable (config=...) and checked, to re-measure on another compiler."""
    if INTERPRET:
        return []
    return [triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "FOLD_SCALE": True, "PIPELINE_QK": True},
                          num_stages=st, num_warps=8) for st in (3, 4)]


def attention_configs(*, with_rejected: bool = False) -> list[triton.Config]:
    """The configs the autotuner chooses from (one under the interpreter); `with_rejected` adds the
    measured-slower ones kept for re-measurement (benchmarks/attention_configs.py, the GPU test)."""
    return _attn_configs() + (_pipelined_configs() if with_rejected else [])


_attn_tuned = triton.autotune(configs=_attn_configs(),
                              key=["SEQ_Q", "SEQ_K", "GROUP", "HEAD_DIM", "CAUSAL", "USE_TMA"])(
    _attn_fwd_kernel)


_ALLOCATOR_SET = False


def _ensure_tma_allocator() -> None:
    """Device-side descriptors need a global-memory scratch; hand Triton the torch allocator."""
    global _ALLOCATOR_SET
    if not _ALLOCATOR_SET:
        def alloc(size: int, alignment: int, stream):  # noqa: ARG001 (Triton's signature)
            return torch.empty(size, device="cuda" if torch.cuda.is_available() else "cpu", dtype=torch.int8)

        triton.set_allocator(alloc)
        _ALLOCATOR_SET = True


def _check_tma(tensors: dict[str, torch.Tensor]) -> None:
    if not HAS_TENSOR_DESCRIPTOR:
        raise NotSupportedError(f"triton {triton.__version__} has no tl.make_tensor_descriptor; the TMA attention "
                                "path needs Triton >= 3.4")
    first = next(iter(tensors.values()))
    if first.device.type == "cuda" and torch.cuda.get_device_capability(first.device)[0] < 9:
        raise NotSupportedError("the TMA attention path needs compute capability >= 9.0 (Hopper)")
    for name, t in tensors.items():
        es = t.element_size()
        if t.data_ptr() % 16 or any((st * es) % 16 for st in t.stride()[:-1]):
            raise NotSupportedError(f"TMA needs 16-byte aligned {name} (base and strides); got strides "
                                    f"{list(t.stride())} of {es}-byte elements")


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, *,
                    sm_scale: float | None = None, out: torch.Tensor | None = None,
                    use_tma: bool = False, config: triton.Config | None = None) -> torch.Tensor:
    """Flash-attention forward with the Triton kernel.

    q: [batch, q_heads, q_len, head_dim]; k, v: [batch, kv_heads, kv_len, head_dim], q_heads a
    multiple of kv_heads; head_dim in (16, 32, 64, 128); last dimension contiguous; same dtype
    (bf16, fp16, fp32) and device. causal: top-left aligned lower-triangular mask (q_len == kv_len).
    sm_scale: softmax scale, default 1/sqrt(head_dim). out: optional [batch, q_heads, q_len,
    head_dim] tensor to write into. use_tma: move q, k, v and o tiles with tensor descriptors (TMA;
    Triton >= 3.4, compute capability >= 9.0, 16-byte aligned strides) instead of pointer loads.
    config: run this one of `attention_configs(with_rejected=True)` instead of the autotuner's pick (tests check every
    config this way; the autotuner would only ever run the fastest).
    Returns o with q's shape and dtype.
    """
    check_tensor("q", q, dims=("batch", "q_heads", "q_len", "head_dim"), dtypes=DTYPES)
    check_triton_device(q)
    B, Hq, Sq, D = q.shape
    kv_dims = ("batch", "kv_heads", "kv_len", "head_dim")
    check_tensor("k", k, dims=kv_dims, shape=(B, None, None, D), dtypes=(q.dtype,), device=q.device)
    Hkv, Sk = k.shape[1], k.shape[2]
    check_tensor("v", v, dims=kv_dims, shape=(B, Hkv, Sk, D), dtypes=(q.dtype,), device=q.device)
    if D not in HEAD_DIMS:
        raise ShapeError(f"head_dim must be one of {HEAD_DIMS}, got {D}")
    if Hkv == 0 or Hq % Hkv:
        raise ShapeError(f"q_heads must be a multiple of kv_heads, got q_heads={Hq}, kv_heads={Hkv}")
    if causal and Sq != Sk:
        raise ShapeError(f"causal attention needs q_len == kv_len, got q_len={Sq}, kv_len={Sk}")
    if Sk == 0 and Sq > 0:
        raise ShapeError("kv_len must be at least 1 (softmax over no keys is undefined), got 0")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.stride(-1) != 1:
            raise ShapeError(f"{name} must have a contiguous head_dim (stride 1), got strides {list(t.stride())}")
    o = check_out(out, (B, Hq, Sq, D), q.dtype, q.device)
    if B * Hq * Sq == 0:
        return o
    scale = (1.0 / math.sqrt(D)) if sm_scale is None else float(sm_scale)
    if not scale >= 0.0:  # the folded softmax takes max(qk) * scale for max(qk * scale)
        raise ShapeError(f"sm_scale must be a non-negative number, got {sm_scale!r}")
    if use_tma:
        _check_tma({"q": q, "k": k, "v": v, "out": o})
        _ensure_tma_allocator()

    def grid(meta):
        return (triton.cdiv(Sq, meta["BLOCK_M"]), B * Hq)

    args = (q, k, v, o, scale * _LOG2E,
            q.stride(0), q.stride(1), q.stride(2),
            k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2),
            o.stride(0), o.stride(1), o.stride(2),
            B, Hq, Hkv, Hq // Hkv, Sq, Sk)
    flags = {"HEAD_DIM": D, "CAUSAL": bool(causal), "USE_TMA": bool(use_tma)}
    if INTERPRET:
        _attn_fwd_kernel[grid](*args, **flags, **(config or _attn_configs()[0]).kwargs)
    elif config is not None:
        _attn_fwd_kernel[grid](*args, **flags, **config.kwargs, num_warps=config.num_warps,
                               num_stages=config.num_stages)
    else:
        _attn_tuned[grid](*args, **flags)
    return o
