"""Tensor parallelism (Megatron-style) for the Llama-shaped model, on torch.distributed.

Each of `tp` ranks holds a slice of every layer:
- column-parallel: q/k/v (its n_heads / tp query heads and n_kv_heads / tp KV heads) and gate/up
  (its ffn_dim / tp columns of each), so attention and SwiGLU run on local heads and columns;
- row-parallel: o and down take the matching rows; their partial outputs are summed by one
  all-reduce after the attention output projection and one after the MLP down projection.
Embeddings, norms and the LM head are replicated (every rank computes the full logits, identical
after the all-reduces, so greedy tokens need no further communication). Vocab-parallel would save
2 x vocab x dim x 2 bytes per rank (2 GB for 8B) at the cost of a gather per step; not done.

Weights are sliced from the same seeded full weights the single-process model draws, so a TP run
compares to `Llama(cfg, seed=...)` directly. TP=1 is not routed here: callers keep the plain model.

Multi-node (design; the single-node code is what runs): each node runs one sampler per local GPU
(one per rank, matched by UUID); records are keyed by (host, GPU UUID), because CUDA indices and
even UUID lists repeat meaning per host; host clocks are aligned by `kernelprof.methods.llm.tp_ranks`
(barrier-synchronized epoch readings, offset of each rank to rank 0) before phases and power
samples from different hosts are laid on one axis.
"""
from __future__ import annotations

from typing import Any

import torch

from kernelprof.errors import UsageError
from kernelprof.methods.llm.config import LlamaConfig
from kernelprof.methods.llm.model import Llama


def check_tp(cfg: LlamaConfig, tp: int) -> None:
    """UsageError unless heads, KV heads and the MLP width split evenly over `tp` ranks."""
    if tp < 1:
        raise UsageError(f"--tp must be >= 1, got {tp}")
    bad = [f"{name}={v}" for name, v in (("n_heads", cfg.n_heads), ("n_kv_heads", cfg.n_kv_heads),
                                          ("ffn_dim", cfg.ffn_dim)) if v % tp]
    if bad:
        raise UsageError(f"{cfg.name} cannot be split over tp={tp} ranks: {', '.join(bad)} not divisible by {tp}")


def _cols(w: torch.Tensor, start: int, width: int) -> torch.Tensor:
    return w[:, start:start + width]


class TPLlama(Llama):
    """One rank's shard of `Llama`; same constructor plus `tp`, `rank` and a process `group`."""

    def __init__(self, cfg: LlamaConfig, *, tp: int, rank: int, group: Any = None, batch: int, max_len: int,
                 **kwargs: Any) -> None:
        check_tp(cfg, tp)
        if not 0 <= rank < tp:
            raise UsageError(f"rank must be in 0..{tp - 1}, got {rank}")
        self.tp, self.rank, self.group = tp, rank, group
        self.heads_local, self.kv_heads_local = cfg.n_heads // tp, cfg.n_kv_heads // tp
        self.ffn_local = cfg.ffn_dim // tp
        # Full weights with a 2-token cache, then sliced; the full tensors are freed layer by layer.
        super().__init__(cfg, batch=1, max_len=2, **kwargs)
        self._shard()
        self.resize_cache(batch, max_len)

    def _shard(self) -> None:
        cfg, r = self.cfg, self.rank
        D = cfg.head_dim
        q_w, kv_w, f_w = self.heads_local * D, self.kv_heads_local * D, self.ffn_local
        for layer in self.layers:
            wqkv, w13 = layer["wqkv"], layer["w13"]
            layer["wqkv"] = torch.cat([_cols(wqkv, r * q_w, q_w), _cols(wqkv, cfg.dim + r * kv_w, kv_w),
                                       _cols(wqkv, cfg.dim + cfg.kv_dim + r * kv_w, kv_w)], dim=1).contiguous()
            layer["wo"] = layer["wo"][r * q_w:(r + 1) * q_w].contiguous()
            layer["w13"] = torch.cat([_cols(w13, r * f_w, f_w), _cols(w13, cfg.ffn_dim + r * f_w, f_w)],
                                     dim=1).contiguous()
            layer["w2"] = layer["w2"][r * f_w:(r + 1) * f_w].contiguous()

    def resize_cache(self, batch: int, max_len: int) -> None:
        if batch < 1 or max_len < 2:
            raise UsageError(f"batch must be >= 1 and max_len >= 2, got {batch}, {max_len}")
        cfg = self.cfg
        kv_heads = getattr(self, "kv_heads_local", cfg.n_kv_heads)
        self.k_cache, self.v_cache = [], []
        shape = (batch, kv_heads, max_len, cfg.head_dim)
        self.k_cache = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(cfg.n_layers)]
        self.v_cache = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(cfg.n_layers)]
        self.batch, self.max_len = batch, max_len
        from kernelprof.methods.llm.model import rope_tables

        self.cos, self.sin = rope_tables(cfg, max_len, self.device)

    def _all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(x, group=self.group)  # in place; capturable in a CUDA graph under NCCL
        return x

    def _mlp(self, x: torch.Tensor, layer: dict) -> torch.Tensor:
        h = self._rms_norm(x, layer["mlp_norm"], self.cfg.norm_eps)
        return x + self._all_reduce(self._mm(self._swiglu(self._mm(h, layer["w13"])), layer["w2"]))

    def _qkv(self, x: torch.Tensor, layer: dict, cos: torch.Tensor, sin: torch.Tensor):
        cfg, H, KV = self.cfg, self.heads_local, self.kv_heads_local
        B, S, _ = x.shape
        D = cfg.head_dim
        h = self._rms_norm(x, layer["attn_norm"], cfg.norm_eps)
        q, k, v = self._mm(h, layer["wqkv"]).split([H * D, KV * D, KV * D], dim=-1)
        q = self._rope(q.view(B, S, H, D), cos, sin)           # [B, S, H/tp, D]
        k = self._rope(k.view(B, S, KV, D), cos, sin)          # [B, S, KV/tp, D]
        return q, k, v.view(B, S, KV, D)

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        B, S = tokens.shape
        if B > self.batch or S > self.max_len:
            raise UsageError(f"tokens must be [<= batch={self.batch}, <= {self.max_len}], got {list(tokens.shape)}")
        x = self.tok_emb[tokens]                                                 # [B, S, dim] (replicated)
        cos, sin = self.cos[:S], self.sin[:S]
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(x, layer, cos, sin)
            self.k_cache[i][:B, :, :S] = k.transpose(1, 2)
            self.v_cache[i][:B, :, :S] = v.transpose(1, 2)
            o = self._prefill_attn(q.transpose(1, 2).contiguous(), self.k_cache[i][:B, :, :S],
                                   self.v_cache[i][:B, :, :S])                   # [B, H/tp, S, D]
            x = x + self._all_reduce(self._mm(o.transpose(1, 2).reshape(B, S, -1), layer["wo"]))
            x = self._mlp(x, layer)
        return self._mm(self._rms_norm(x[:, -1], self.norm, cfg.norm_eps), self.lm_head)

    @torch.no_grad()
    def decode_step(self, token: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        B = token.shape[0]
        x = self.tok_emb[token][:, None]                                         # [B, 1, dim]
        cos, sin = self.cos.index_select(0, pos), self.sin.index_select(0, pos)
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(x, layer, cos, sin)
            self.k_cache[i].index_copy_(2, pos, k.transpose(1, 2))
            self.v_cache[i].index_copy_(2, pos, v.transpose(1, 2))
            o = self._decode_attn(q[:, 0], self.k_cache[i], self.v_cache[i], lengths)  # [B, H/tp, D]
            x = x + self._all_reduce(self._mm(o.reshape(B, 1, -1), layer["wo"]))
            x = self._mlp(x, layer)
        return self._mm(self._rms_norm(x[:, 0], self.norm, cfg.norm_eps), self.lm_head)


def build_tp_model(cfg: LlamaConfig, *, tp: int, rank: int, group: Any = None, batch: int, max_len: int,
                   **kwargs: Any) -> Llama:
    """The plain `Llama` for tp=1 (the unchanged single-GPU path), else this rank's `TPLlama`."""
    if tp == 1:
        return Llama(cfg, batch=batch, max_len=max_len, **kwargs)
    return TPLlama(cfg, tp=tp, rank=rank, group=group, batch=batch, max_len=max_len, **kwargs)
