"""One point of the decode tuning grid: the rule's config, a few split counts around it, a few tiles
at the best split, the fused merge on the best split config and the rule's, and the SDPA backends, each checked once against an fp32 eager reference on the
first sequence and timed (benchmarks/tuning.py). Used by benchmarks/decode_tune.py."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from benchmarks.tuning import Timer, Timing, error_line, rel_err
from kernels.decode import decode_attention, decode_eager, decode_min_bytes
from kernels.decode.dispatch import DecodeConfig, chunk_tokens, rule_config, shape_bucket

# bf16 output (u = 2^-8) and P rounded to bf16 before P V: 4u, as benchmarks/kernels.py.
RTOL_BF16 = 4 * 2.0 ** -8
# Tiles tried at the best split count, besides the rule's (BLOCK_N, warps, stages).
TILES = ((64, 4, 3), (128, 8, 3), (64, 4, 5), (128, 4, 2))
SDPA_BACKENDS = ("flash", "efficient", "cudnn")
# Repeating K and V for a backend without enable_gqa: only when the copy stays this small.
REPEAT_KV_MAX_BYTES = 24 << 30


def split_candidates(rule_splits: int, max_len: int, block_n: int) -> list[int]:
    """1, the rule's count, half, double and 4x of it; each re-rounded to whole chunks of >= 128
    tokens, duplicates dropped."""
    most = max(1, max_len // 128)
    want = [1, rule_splits, max(1, rule_splits // 2), rule_splits * 2, rule_splits * 4, 2, 4]
    out: list[int] = []
    for s in want:
        s = chunk_tokens(max_len, min(s, most, 256), block_n)[1]
        if s not in out:
            out.append(s)
    return out[:6]


def _sdpa_call(q, k, v, backend: str, gqa: str):
    from torch.nn.attention import sdpa_kernel

    from kernels.attention.reference import sdpa_backend

    q4 = q.unsqueeze(2)  # [B, Hq, 1, D]
    kwargs = {"enable_gqa": True} if gqa == "enable_gqa" else {}

    def call():
        with sdpa_kernel(sdpa_backend(backend)):
            return torch.nn.functional.scaled_dot_product_attention(q4, k, v, **kwargs).squeeze(2)
    return call


def measure_point(timer: Timer, batch: int, q_heads: int, kv_heads: int, max_len: int, head_dim: int,
                  num_sms: int, log, *, dtype: torch.dtype = torch.bfloat16, device: str = "cuda",
                  rtol: float = RTOL_BF16) -> dict[str, Any]:
    """Measure one grid point; returns its record (candidates, SDPA backends, best, rule). dtype,
    device and rtol are for the CPU test of this function (fp16/fp32 under the interpreter)."""
    cache = (batch, kv_heads, max_len, head_dim)
    q = torch.randn(batch, q_heads, head_dim, device=device, dtype=dtype)
    k = torch.empty(cache, device=device, dtype=dtype).normal_()
    v = torch.empty(cache, device=device, dtype=dtype).normal_()
    lengths = torch.full((batch,), max_len, dtype=torch.int32, device=device)
    nbytes = decode_min_bytes(q_heads, kv_heads, head_dim, [max_len] * batch, dtype)
    # The oracle on sequence 0 only: fp32 eager over one sequence fits beside any cache here.
    ref0 = decode_eager(q[:1].float(), k[:1].float(), v[:1].float(), lengths[:1]).double()

    def run(name: str, fn, extra: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"name": name, **extra}
        try:
            out = fn()
            if q.is_cuda:
                torch.cuda.synchronize()
            row["rel_err_seq0"] = rel_err(out[:1], ref0)
            row["correct"] = row["rel_err_seq0"] < rtol
            del out
            t: Timing = timer.time(fn, nbytes)
        except Exception as exc:  # noqa: BLE001 - OutOfResources, compile errors, refused backends
            row["error"] = error_line(exc)
            log(f"    {name:44s} FAILED {row['error'][:120]}")
            if q.is_cuda:
                torch.cuda.empty_cache()
            return row
        row.update(t.to_json())
        row["tb_s"] = round(nbytes / (t.median_ms * 1e-3) / 1e12, 4)
        flag = "" if row["correct"] else f"  <-- rel err {row['rel_err_seq0']:.1e} above {rtol:.1e}"
        log(f"    {name:44s} {t.median_ms * 1e3:9.1f} us {row['tb_s']:6.3f} TB/s{flag}")
        return row

    def ours(cfg: DecodeConfig) -> dict[str, Any]:
        name = f"triton s{cfg.num_splits} n{cfg.block_n} w{cfg.num_warps} st{cfg.num_stages}"
        name += " fused-merge" if cfg.merge == "fused" and cfg.num_splits > 1 else ""
        return run(name, lambda: decode_attention(q, k, v, lengths, config=cfg), {"config": cfg.to_json()})

    rule = rule_config(batch, q_heads, kv_heads, max_len, head_dim, num_sms)
    rows = [ours(rule)]
    for s in split_candidates(rule.num_splits, max_len, rule.block_n):
        if s != rule.num_splits:
            rows.append(ours(replace(rule, num_splits=s, source="candidate")))
    good = [r for r in rows if r.get("correct") and "tb_s" in r]
    best_splits = max(good, key=lambda r: r["tb_s"])["config"]["num_splits"] if good else rule.num_splits
    for bn, warps, stages in TILES:
        cfg = replace(rule, num_splits=best_splits, block_n=bn, num_warps=warps, num_stages=stages,
                      source="candidate")
        cfg = replace(cfg, num_splits=chunk_tokens(max_len, cfg.num_splits, bn)[1])
        rows.append(ours(cfg))
    # The fused merge (one launch fewer) on the best split config so far and on the rule's.
    split_rows = [r for r in rows if r.get("correct") and "tb_s" in r and r["config"]["num_splits"] > 1]
    fused_of = [DecodeConfig.from_json(max(split_rows, key=lambda r: r["tb_s"])["config"])] if split_rows else []
    if rule.num_splits > 1:
        fused_of.append(rule)
    for cfg in dict.fromkeys(replace(c, merge="fused", source="candidate", note="") for c in fused_of):
        rows.append(ours(cfg))

    sdpa_rows = []
    for backend in SDPA_BACKENDS:
        r = run(f"sdpa-{backend} enable_gqa", _sdpa_call(q, k, v, backend, "enable_gqa"),
                {"backend": backend, "gqa": "enable_gqa"})
        if "error" in r and q_heads != kv_heads:
            if 2 * k.numel() * k.element_size() * (q_heads // kv_heads) <= REPEAT_KV_MAX_BYTES:
                group = q_heads // kv_heads
                kr, vr = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
                r = run(f"sdpa-{backend} repeat_kv", _sdpa_call(q, kr, vr, backend, "repeat_kv"),
                        {"backend": backend, "gqa": "repeat_kv (K, V copied per query head before timing)",
                         "enable_gqa_error": r["error"]})
                del kr, vr
            else:
                r["note"] = "no enable_gqa, and repeated K/V would exceed 24 GiB: not run"
        sdpa_rows.append(r)

    good = [r for r in rows if r.get("correct") and "tb_s" in r]
    sdpa_good = [r for r in sdpa_rows if r.get("correct") and "tb_s" in r]
    best = max(good, key=lambda r: r["tb_s"]) if good else None
    sdpa_best = max(sdpa_good, key=lambda r: r["tb_s"]) if sdpa_good else None
    return {"bucket": shape_bucket(batch, q_heads, kv_heads, max_len, head_dim), "bytes": nbytes,
            "candidates": rows, "sdpa": sdpa_rows, "best": best, "sdpa_best": sdpa_best, "rule": rows[0]}
