"""Triton KV-cache decode attention: one new query token per sequence against its cache.

Layout: q [batch, q_heads, head_dim]; k_cache and v_cache [batch, kv_heads, max_len, head_dim];
lengths int32 [batch], sequence b attends to cache positions 0 .. lengths[b]-1 (values must lie in
1..max_len; they are not checked, which would cost a device sync). Output o [batch, q_heads,
head_dim]. q_heads is a multiple of kv_heads (grouped-query attention).

Each program owns one (sequence, KV head) and all GROUP query heads that share it, so K and V are
read once for the group: the group's queries form the rows of a tl.dot (padded to 16 rows, the
smallest MMA tile). Split-K ("flash-decoding") cuts the cache into chunks processed by separate
programs, each leaving a partial output normalized by its own softmax sum plus its log-sum-exp;
a second kernel merges the chunks, or (config merge="fused") the last chunk program of each
(sequence, KV head) to finish does, found by an atomic ticket. The no-split variant has one program
walk the whole cache.
The split count and tiles come from kernels/decode/dispatch.py (a tuned table per GPU, else an
SM-count rule); the kernel is launched with that config directly, not autotuned.
"""
from __future__ import annotations

import functools
import math
from dataclasses import replace

import torch
import triton
import triton.language as tl

from kernels.decode.dispatch import DecodeConfig, choose_decode_config, chunk_tokens
from kernels.errors import ShapeError
from kernels.validate import INTERPRET, check_out, check_tensor, check_triton_device

DTYPES = (torch.bfloat16, torch.float16, torch.float32)
HEAD_DIMS = (16, 32, 64, 128, 256)
_LOG2E = 1.4426950408889634


@triton.jit
def _merge_group(O_part, LSE_part, O, b, h_kv, GROUP, NUM_SPLITS,
                 stride_pb, stride_ph, stride_ps, stride_lb, stride_lh, stride_ob, stride_oh,
                 HEAD_DIM: tl.constexpr, GROUP_P2: tl.constexpr, S_STEP: tl.constexpr):
    """The fused merge: o = sum_s w_s o_s / sum_s w_s (w_s = 2^(lse_s - max lse), as
    _decode_merge_kernel) for the GROUP query heads of one KV head. Rows r of a tile are (head
    r // S_STEP, split r % S_STEP), so one load fetches S_STEP splits of every head at once (a loop
    over heads or splits would pay one L2 round trip each). Loads bypass L1 (.cg): the partials were
    written by other SMs."""
    offs_r = tl.arange(0, GROUP_P2 * S_STEP)
    g = offs_r // S_STEP
    s_off = offs_r % S_STEP
    g_ok = g < GROUP
    heads = h_kv * GROUP + g
    lse_rows = LSE_part + b.to(tl.int64) * stride_lb + heads * stride_lh
    p_rows = O_part + b.to(tl.int64) * stride_pb + heads * stride_ph
    offs_d = tl.arange(0, HEAD_DIM)
    m = tl.full([GROUP_P2], float("-inf"), dtype=tl.float32)
    for s0 in range(0, NUM_SPLITS, S_STEP):
        ok = g_ok & (s0 + s_off < NUM_SPLITS)
        lse = tl.load(lse_rows + s0 + s_off, mask=ok, other=float("-inf"), cache_modifier=".cg")
        m = tl.maximum(m, tl.max(tl.reshape(lse, (GROUP_P2, S_STEP)), 1))
    m = tl.where(m == float("-inf"), 0.0, m)
    acc = tl.zeros([GROUP_P2, HEAD_DIM], dtype=tl.float32)
    total = tl.zeros([GROUP_P2], dtype=tl.float32)
    for s0 in range(0, NUM_SPLITS, S_STEP):
        ok = g_ok & (s0 + s_off < NUM_SPLITS)
        lse = tl.load(lse_rows + s0 + s_off, mask=ok, other=float("-inf"), cache_modifier=".cg")
        w = tl.math.exp2(tl.reshape(lse, (GROUP_P2, S_STEP)) - m[:, None])  # 0 for empty chunks
        total += tl.sum(w, 1)
        o = tl.load(p_rows[:, None] + (s0 + s_off)[:, None] * stride_ps + offs_d[None, :], mask=ok[:, None],
                    other=0.0, cache_modifier=".cg")
        acc += tl.sum(tl.reshape(o, (GROUP_P2, S_STEP, HEAD_DIM)) * w[:, :, None], 1)
    out = acc / tl.where(total > 0, total, 1.0)[:, None]
    offs_g = tl.arange(0, GROUP_P2)
    o_ptrs = O + b.to(tl.int64) * stride_ob + (h_kv * GROUP + offs_g)[:, None] * stride_oh + offs_d[None, :]
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=(offs_g < GROUP)[:, None])


@triton.jit
def _decode_chunk_kernel(Q, K, V, Lengths, O_part, LSE_part, O, Tickets, qk_scale,
                         stride_qb, stride_qh,
                         stride_kb, stride_kh, stride_kn,
                         stride_vb, stride_vh, stride_vn,
                         stride_pb, stride_ph, stride_ps,
                         stride_lb, stride_lh,
                         stride_ob, stride_oh,
                         KV_HEADS, GROUP, CHUNK,
                         HEAD_DIM: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr,
                         SPLIT: tl.constexpr, FUSED_MERGE: tl.constexpr = False,
                         GROUP_P2: tl.constexpr = 1, S_STEP: tl.constexpr = 1):
    pid_bh = tl.program_id(0)
    split = tl.program_id(1)
    b = pid_bh // KV_HEADS
    h_kv = pid_bh % KV_HEADS
    length = tl.load(Lengths + b)
    start = split * CHUNK
    end = tl.minimum(start + CHUNK, length)

    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, HEAD_DIM)
    g_valid = offs_g < GROUP
    heads = h_kv * GROUP + offs_g  # the query heads that read this KV head
    q = tl.load(Q + b.to(tl.int64) * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
                mask=g_valid[:, None], other=0.0)  # [BLOCK_G, HEAD_DIM]
    k_base = K + b.to(tl.int64) * stride_kb + h_kv.to(tl.int64) * stride_kh
    v_base = V + b.to(tl.int64) * stride_vb + h_kv.to(tl.int64) * stride_vh

    m_i = tl.full([BLOCK_G], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_G], dtype=tl.float32)
    acc = tl.zeros([BLOCK_G, HEAD_DIM], dtype=tl.float32)
    offs_n0 = tl.arange(0, BLOCK_N)
    # Online softmax in the log2 domain (qk_scale = softmax scale * log2(e)); every block holds at
    # least one valid key (start_n < end), so m_new is finite and alpha = 2^(-inf) = 0 on the first.
    for start_n in range(start, end, BLOCK_N):
        offs_n = start_n + offs_n0
        valid = offs_n < end
        k = tl.load(k_base + offs_n[:, None] * stride_kn + offs_d[None, :], mask=valid[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k)) * qk_scale  # [BLOCK_G, BLOCK_N]
        s = tl.where(valid[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.math.exp2(s - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + offs_n[:, None] * stride_vn + offs_d[None, :], mask=valid[:, None], other=0.0)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_new

    # A chunk that starts past the sequence's end saw no keys: it leaves o = 0 and lse = -inf,
    # which gives it weight 0 in the merge.
    l_safe = tl.where(l_i > 0, l_i, 1.0)
    out = acc / l_safe[:, None]
    if SPLIT:
        lse = m_i + tl.math.log2(l_safe)  # log2-sum-exp2 of this chunk's scores; -inf if empty
        p_ptrs = (O_part + b.to(tl.int64) * stride_pb + heads[:, None] * stride_ph + split * stride_ps
                  + offs_d[None, :])
        tl.store(p_ptrs, out, mask=g_valid[:, None])
        tl.store(LSE_part + b.to(tl.int64) * stride_lb + heads * stride_lh + split, lse, mask=g_valid)
        if FUSED_MERGE:
            # Every thread's partial stores happen before the ticket (the barrier), and the ticket's
            # acq_rel at GPU scope publishes them; the program that draws the last ticket sees all
            # chunks' partials, merges, and resets its ticket for the next call (or graph replay).
            tl.debug_barrier()
            ticket = tl.atomic_add(Tickets + pid_bh, 1, sem="acq_rel", scope="gpu")
            if ticket == tl.num_programs(1) - 1:
                _merge_group(O_part, LSE_part, O, b, h_kv, GROUP, tl.num_programs(1),
                             stride_pb, stride_ph, stride_ps, stride_lb, stride_lh, stride_ob, stride_oh,
                             HEAD_DIM, GROUP_P2, S_STEP)
                tl.store(Tickets + pid_bh, 0)
    else:
        o_ptrs = O + b.to(tl.int64) * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]
        tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=g_valid[:, None])


@triton.jit
def _decode_merge_kernel(O_part, LSE_part, O,
                         stride_pb, stride_ph, stride_ps, stride_lb, stride_lh, stride_ob, stride_oh,
                         Q_HEADS, NUM_SPLITS,
                         HEAD_DIM: tl.constexpr, BLOCK_S: tl.constexpr, SPLIT_STEP: tl.constexpr):
    """o = sum_s w_s o_s / sum_s w_s with w_s = 2^(lse_s - max lse): each chunk's output was
    normalized by its own sum, and lse_s carries that sum at the common scale. The partial outputs
    are summed SPLIT_STEP chunks at a time, so 256 splits do not need 256 x HEAD_DIM registers."""
    pid = tl.program_id(0)
    b = pid // Q_HEADS
    h = pid % Q_HEADS
    lse_base = LSE_part + b.to(tl.int64) * stride_lb + h * stride_lh
    p_base = O_part + b.to(tl.int64) * stride_pb + h * stride_ph
    offs_all = tl.arange(0, BLOCK_S)
    lse_all = tl.load(lse_base + offs_all, mask=offs_all < NUM_SPLITS, other=float("-inf"))
    m = tl.max(lse_all, 0)
    m = tl.where(m == float("-inf"), 0.0, m)
    total = tl.sum(tl.math.exp2(lse_all - m), 0)  # 0 for empty chunks
    offs_d = tl.arange(0, HEAD_DIM)
    offs_s0 = tl.arange(0, SPLIT_STEP)
    acc = tl.zeros([HEAD_DIM], dtype=tl.float32)
    for s0 in range(0, NUM_SPLITS, SPLIT_STEP):
        offs_s = s0 + offs_s0
        s_valid = offs_s < NUM_SPLITS
        w = tl.math.exp2(tl.load(lse_base + offs_s, mask=s_valid, other=float("-inf")) - m)
        o_part = tl.load(p_base + offs_s[:, None] * stride_ps + offs_d[None, :], mask=s_valid[:, None], other=0.0)
        acc += tl.sum(o_part * w[:, None], 0)
    out = acc / tl.where(total > 0, total, 1.0)
    tl.store(O + b.to(tl.int64) * stride_ob + h * stride_oh + offs_d, out.to(O.dtype.element_ty))


# Under the interpreter the dispatcher's tiles are swapped for 16-token blocks: small test caches
# then still span several blocks and chunks (explicit configs are run as given).
_INTERPRET_BLOCK_N = 16


@functools.lru_cache(maxsize=None)
def _device_facts(device_index: int) -> tuple[int, str]:
    props = torch.cuda.get_device_properties(device_index)
    return props.multi_processor_count, props.name


def resolve_decode_config(batch: int, q_heads: int, kv_heads: int, max_len: int, head_dim: int,
                          device: torch.device, *, num_splits: int | None = None,
                          config: DecodeConfig | None = None) -> tuple[DecodeConfig, int]:
    """(config, chunk tokens) that `decode_attention` launches with. config given: run as given
    (num_splits re-rounded to whole chunks); else the dispatcher's choice for this GPU, with
    num_splits overriding its split count when given."""
    if config is None:
        if num_splits is not None and (not isinstance(num_splits, int) or isinstance(num_splits, bool)
                                       or num_splits < 1):
            raise ShapeError(f"num_splits must be a positive integer, got {num_splits!r}")
        index = (device.index if device.index is not None else torch.cuda.current_device()) \
            if device.type == "cuda" else -1
        return _dispatched(batch, q_heads, kv_heads, max_len, head_dim, index, num_splits)
    return _checked(config, q_heads, kv_heads, max_len)


@functools.lru_cache(maxsize=4096)
def _dispatched(batch: int, q_heads: int, kv_heads: int, max_len: int, head_dim: int, device_index: int,
                num_splits: int | None) -> tuple[DecodeConfig, int]:
    """Cached: a decode step calls this once per layer, and the rule scans up to 256 split counts."""
    # CPU tensors (the interpreter): a few "SMs" and no GPU name, so the rule with several chunks.
    sms, name = _device_facts(device_index) if device_index >= 0 else (4, None)
    config = choose_decode_config(batch, q_heads, kv_heads, max_len, head_dim, sms, gpu_name=name)
    if INTERPRET:
        config = replace(config, block_n=_INTERPRET_BLOCK_N)
    if num_splits is not None:
        config = replace(config, num_splits=num_splits, source="caller")
    return _checked(config, q_heads, kv_heads, max_len)


def _checked(config: DecodeConfig, q_heads: int, kv_heads: int, max_len: int) -> tuple[DecodeConfig, int]:
    problems = config.problems()
    if problems:
        raise ShapeError(f"decode config {config}: {'; '.join(problems)}")
    if config.block_g < q_heads // kv_heads:
        raise ShapeError(f"block_g={config.block_g} is smaller than the GQA group {q_heads // kv_heads}")
    chunk, splits = chunk_tokens(max_len, config.num_splits, config.block_n)
    return replace(config, num_splits=splits), chunk


def default_num_splits(batch: int, kv_heads: int, max_len: int, device: torch.device, q_heads: int | None = None,
                       head_dim: int = 128) -> int:
    """The dispatcher's split count for this shape on `device` (kept for callers of the old API;
    q_heads defaults to kv_heads)."""
    cfg, _ = resolve_decode_config(batch, q_heads or kv_heads, kv_heads, max_len, head_dim, device)
    return cfg.num_splits


# Ticket counters of the fused merge, one int32 per (sequence, KV head), per device: each call leaves
# them at zero (the last program resets its own), so they are allocated and zeroed once, on the first
# eager call, and a CUDA graph captured later reuses them (a graph captured before any eager call zeroes
# fresh counters inside itself instead). Two fused-merge calls running at once on two streams of one
# device would share them: not supported (the model and the benchmarks run decode on one stream).
_TICKETS: dict[str, torch.Tensor] = {}


def _tickets(device: torch.device, n: int) -> torch.Tensor:
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    key = str(device)
    have = _TICKETS.get(key)
    if have is not None and have.numel() >= n:
        return have
    fresh = torch.zeros(max(n, 2 * have.numel() if have is not None else n), dtype=torch.int32, device=device)
    if not (device.type == "cuda" and torch.cuda.is_current_stream_capturing()):
        _TICKETS[key] = fresh
    return fresh


def _check_decode_inputs(q, k_cache, v_cache, lengths):
    check_tensor("q", q, dims=("batch", "q_heads", "head_dim"), dtypes=DTYPES)
    check_triton_device(q)
    B, Hq, D = q.shape
    dims = ("batch", "kv_heads", "max_len", "head_dim")
    check_tensor("k_cache", k_cache, dims=dims, shape=(B, None, None, D), dtypes=(q.dtype,), device=q.device)
    Hkv, max_len = k_cache.shape[1], k_cache.shape[2]
    check_tensor("v_cache", v_cache, dims=dims, shape=(B, Hkv, max_len, D), dtypes=(q.dtype,), device=q.device)
    check_tensor("lengths", lengths, dims=("batch",), shape=(B,), dtypes=(torch.int32,), device=q.device)
    if D not in HEAD_DIMS:
        raise ShapeError(f"head_dim must be one of {HEAD_DIMS}, got {D}")
    if Hkv == 0 or Hq % Hkv:
        raise ShapeError(f"q_heads must be a multiple of kv_heads, got q_heads={Hq}, kv_heads={Hkv}")
    if max_len == 0:
        raise ShapeError("the cache must hold at least one position (max_len >= 1), got max_len=0")
    for name, t in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache)):
        if t.stride(-1) != 1:
            raise ShapeError(f"{name} must have a contiguous head_dim (stride 1), got strides {list(t.stride())}")
    if not lengths.is_contiguous():
        raise ShapeError("lengths must be contiguous")
    return B, Hq, Hkv, max_len, D


def decode_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor, *,
                     num_splits: int | None = None, sm_scale: float | None = None,
                     out: torch.Tensor | None = None, config: DecodeConfig | None = None) -> torch.Tensor:
    """Decode attention with the Triton kernels, split-K over the cache (flash-decoding).

    q: [batch, q_heads, head_dim]; k_cache, v_cache: [batch, kv_heads, max_len, head_dim];
    lengths: int32 [batch], each in 1..max_len (not checked: that would sync with the device).
    q_heads a multiple of kv_heads; bf16, fp16 or fp32; head_dim contiguous. num_splits: chunks of
    the cache per (sequence, KV head), 1 gives the no-split path; None lets the dispatcher
    (kernels/decode/dispatch.py: tuned table, else the SM-count rule) choose. config: a full
    DecodeConfig to run as given (overrides num_splits). out: optional [batch, q_heads, head_dim]
    tensor. Returns o [batch, q_heads, head_dim].
    """
    B, Hq, Hkv, max_len, D = _check_decode_inputs(q, k_cache, v_cache, lengths)
    o = check_out(out, (B, Hq, D), q.dtype, q.device)
    if B == 0 or Hq == 0:
        return o
    cfg, chunk = resolve_decode_config(B, Hq, Hkv, max_len, D, q.device, num_splits=num_splits, config=config)
    num_splits = cfg.num_splits
    group = Hq // Hkv
    scale = (1.0 / math.sqrt(D)) if sm_scale is None else float(sm_scale)
    split = num_splits > 1
    fused = split and cfg.merge == "fused"
    if split:
        o_part = torch.empty((B, Hq, num_splits, D), dtype=torch.float32, device=q.device)
        lse_part = torch.empty((B, Hq, num_splits), dtype=torch.float32, device=q.device)
    else:
        o_part, lse_part = o, o  # placeholders, never touched when SPLIT is False
    tickets = _tickets(q.device, B * Hkv) if fused else lengths  # lengths: an unused placeholder
    group_p2 = triton.next_power_of_2(group)
    args = (q, k_cache, v_cache, lengths, o_part, lse_part, o, tickets, scale * _LOG2E,
            q.stride(0), q.stride(1),
            k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
            v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
            o_part.stride(0) if split else 0, o_part.stride(1) if split else 0, o_part.stride(2) if split else 0,
            lse_part.stride(0) if split else 0, lse_part.stride(1) if split else 0,
            o.stride(0), o.stride(1),
            Hkv, group, chunk)
    _decode_chunk_kernel[(B * Hkv, num_splits)](*args, HEAD_DIM=D, BLOCK_G=cfg.block_g, BLOCK_N=cfg.block_n,
                                                SPLIT=split, FUSED_MERGE=fused, GROUP_P2=group_p2,
                                                S_STEP=max(1, min(triton.next_power_of_2(num_splits), 64 // group_p2)),
                                                num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    if split and not fused:
        block_s = triton.next_power_of_2(num_splits)
        _decode_merge_kernel[(B * Hq,)](o_part, lse_part, o,
                                        o_part.stride(0), o_part.stride(1), o_part.stride(2),
                                        lse_part.stride(0), lse_part.stride(1), o.stride(0), o.stride(1),
                                        Hq, num_splits, HEAD_DIM=D, BLOCK_S=block_s, SPLIT_STEP=min(block_s, 16),
                                        num_warps=4)
    return o


def decode_attention_nosplit(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, lengths: torch.Tensor,
                             *, sm_scale: float | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Decode attention with one program per (sequence, KV head) walking its whole cache, no merge.
    Same shapes as `decode_attention`."""
    return decode_attention(q, k_cache, v_cache, lengths, num_splits=1, sm_scale=sm_scale, out=out)
