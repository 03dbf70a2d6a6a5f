"""A Llama-3-shaped decoder on the suite's kernels, in one read (gpt-fast style).

RMSNorm, RoPE, grouped-query attention, SwiGLU MLP, an untied LM head and a static KV cache.
Weights are random bf16 drawn on the GPU from a seed: no download, and random rather than zero so
that the tensor cores draw realistic power. Attention paths:
- "triton": prefill through the Triton flash-attention kernel, decode through the Triton split-K
  decode kernel (graph-capturable: no host syncs);
- "eager": the readable references that materialize the score matrix (decode batched over the
  sequences, as a plain PyTorch model writes it) and read lengths on the host (the "unoptimized
  PyTorch" a user compares against);
- "eager-static": the same references, decode over the whole static cache with a device-side mask
  (no host read, so a CUDA graph can capture the step).
Pointwise work (`pointwise`, by default "triton" with Triton attention, else "eager"): RMSNorm, RoPE
and SwiGLU as one fused Triton kernel each, plus the fused decode-step kernels, or chains of PyTorch ops.
GEMMs go through cuBLAS (torch.matmul), the Triton GEMM, or ("fp8") fp8 e4m3 weights with row-wise
scales (kernels/gemm/fp8_rowwise.py; the LM head stays bf16).
"""
from __future__ import annotations

import math

import torch

from kernelprof.errors import UsageError
from kernelprof.methods.llm.config import LlamaConfig
from kernels.pointwise import reference as _ref


def rope_tables(cfg: LlamaConfig, max_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [max_len, head_dim / 2] in float32."""
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, device=device, dtype=torch.float32) / cfg.head_dim))
    ang = torch.outer(torch.arange(max_len, device=device, dtype=torch.float32), inv)
    return ang.cos(), ang.sin()


# The references live with the fused kernels (kernels/pointwise); the eager path runs these.
apply_rope = _ref.apply_rope
rms_norm = _ref.rms_norm

# Kernel classes `Llama.set_duplicate` can run twice (kernelprof.methods.llm.marginal), each with the bound
# kernels it wraps. The KV-cache writes of the eager path and the prefill (copies) are not among them.
_DUPLICATED_KERNELS = {"gemm": ("_mm2d",), "attention": ("_prefill_attn", "_decode_attn"),
                       "pointwise": ("_rms_norm", "_rope", "_swiglu", "_add_rms_norm", "_rope_qkv_to_cache")}
DUPLICABLE_CLASSES = tuple(_DUPLICATED_KERNELS)
GEMMS = ("cublas", "triton", "fp8")
# "eager-static": the eager references, with decode over the whole static cache masked on the device
# (no host read), so that the ladder can add CUDA graphs to the eager model alone.
ATTENTIONS = ("triton", "eager", "eager-static")
# The weights fp8 replaces: every linear layer of every block. The LM head stays bf16 (its logits
# decide the tokens; 1 GB of the 15 GB read per decode step).
FP8_WEIGHTS = ("wqkv", "wo", "w13", "w2")


def _twice(fn):
    """fn run twice, the second result returned: each duplicated op is pure, or rewrites the same values."""
    def run_twice(*args, **kwargs):
        fn(*args, **kwargs)
        return fn(*args, **kwargs)
    return run_twice


class Llama:
    """The model, its weights and a static KV cache for `batch` sequences of up to `max_len` tokens."""

    def __init__(self, cfg: LlamaConfig, *, batch: int, max_len: int, device: torch.device | str = "cuda",
                 dtype: torch.dtype = torch.bfloat16, seed: int = 0, attention: str = "triton",
                 gemm: str = "cublas", pointwise: str | None = None) -> None:
        if attention not in ATTENTIONS:
            raise UsageError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        pointwise = pointwise or ("triton" if attention == "triton" else "eager")
        if pointwise not in ("triton", "eager"):
            raise UsageError(f"pointwise must be 'triton' or 'eager', got {pointwise!r}")
        if gemm not in GEMMS:
            raise UsageError(f"gemm must be one of {GEMMS}, got {gemm!r}")
        if batch < 1 or max_len < 2:
            raise UsageError(f"batch must be >= 1 and max_len >= 2, got {batch}, {max_len}")
        self.cfg, self.batch, self.max_len = cfg, batch, max_len
        self.device, self.dtype = torch.device(device), dtype
        self.attention, self.gemm, self.pointwise = attention, gemm, pointwise
        g = torch.Generator(device=self.device)
        g.manual_seed(seed)

        def w(*shape: int, scale: float = 0.02) -> torch.Tensor:
            return (torch.randn(*shape, generator=g, device=self.device, dtype=torch.float32) * scale).to(dtype)

        d, kv = cfg.dim, cfg.kv_dim
        self.tok_emb = w(cfg.vocab_size, d, scale=1.0)
        self.layers = []
        for _ in range(cfg.n_layers):
            self.layers.append({
                "attn_norm": torch.ones(d, device=self.device, dtype=dtype),
                "wqkv": w(d, d + 2 * kv),           # [dim, q | k | v]
                "wo": w(d, d),
                "mlp_norm": torch.ones(d, device=self.device, dtype=dtype),
                "w13": w(d, 2 * cfg.ffn_dim),       # [dim, gate | up]
                "w2": w(cfg.ffn_dim, d, scale=0.02 / math.sqrt(2 * cfg.n_layers)),
            })
        self.norm = torch.ones(d, device=self.device, dtype=dtype)
        self.lm_head = w(d, cfg.vocab_size)
        self.k_cache: list[torch.Tensor] = []
        self.v_cache: list[torch.Tensor] = []
        self.resize_cache(batch, max_len)
        self.duplicate: str | None = None
        if gemm == "fp8":
            self.gemm = "cublas"
            self.quantize_fp8()
        self._bind_kernels()

    def quantize_fp8(self) -> None:
        """Replace the blocks' linear weights by fp8 e4m3 with one scale per output column (in place:
        the bf16 weights are freed), and route their GEMMs through torch._scaled_mm. Build a bf16
        model with the same seed to compare outputs (the ladder's kp-fp8 rung does)."""
        from kernels.gemm.fp8_rowwise import quantize_weight

        if self.gemm == "fp8":
            return
        for layer in self.layers:
            for name in FP8_WEIGHTS:
                layer[name] = quantize_weight(layer[name])
        self.gemm = "fp8"
        self._bind_kernels()

    def set_duplicate(self, kernel_class: str | None) -> None:
        """Run every kernel of one class (DUPLICABLE_CLASSES) twice from now on, or none (None): the
        marginal-energy method's variants. Outputs are unchanged; capture CUDA graphs after the call."""
        if kernel_class is not None and kernel_class not in DUPLICABLE_CLASSES:
            raise UsageError(f"kernel_class must be one of {DUPLICABLE_CLASSES} or None, got {kernel_class!r}")
        self.duplicate = kernel_class
        self._bind_kernels()

    def resize_cache(self, batch: int, max_len: int) -> None:
        """Reallocate the KV cache (zeroed) for `batch` sequences of up to `max_len` tokens, keeping
        the weights: a workload's bins reuse one model instead of regenerating 16 GB of weights each."""
        if batch < 1 or max_len < 2:
            raise UsageError(f"batch must be >= 1 and max_len >= 2, got {batch}, {max_len}")
        cfg = self.cfg
        self.k_cache, self.v_cache = [], []  # free the old cache before allocating the new one
        cache_shape = (batch, cfg.n_kv_heads, max_len, cfg.head_dim)
        self.k_cache = [torch.zeros(cache_shape, device=self.device, dtype=self.dtype) for _ in range(cfg.n_layers)]
        self.v_cache = [torch.zeros(cache_shape, device=self.device, dtype=self.dtype) for _ in range(cfg.n_layers)]
        self.batch, self.max_len = batch, max_len
        self.cos, self.sin = rope_tables(cfg, max_len, self.device)

    def _bind_kernels(self) -> None:
        if self.gemm == "triton":
            from kernels.gemm.triton_gemm import gemm as triton_gemm

            self._mm2d = triton_gemm
        elif self.gemm == "fp8":
            from kernels.gemm.fp8_rowwise import Fp8Weight, fp8_linear
            from kernels.gemm.reference import fp8_linear_reference

            fp8 = fp8_linear if self.device.type == "cuda" else fp8_linear_reference

            def mm_fp8(x: torch.Tensor, w) -> torch.Tensor:
                return fp8(x, w) if isinstance(w, Fp8Weight) else torch.matmul(x, w)

            self._mm2d = mm_fp8
        else:
            self._mm2d = torch.matmul
        if self.attention == "triton":
            from kernels.attention.triton_flash import flash_attention
            from kernels.decode.triton_decode import decode_attention

            self._prefill_attn = lambda q, k, v: flash_attention(q, k, v, causal=True)
            # num_splits left to kernels/decode/dispatch.py: the tuned table for this GPU, else the SM rule.
            self._decode_attn = decode_attention
        else:
            from kernels.attention.reference import attention_eager
            from kernels.decode.reference import decode_eager_batched, decode_eager_static

            self._prefill_attn = lambda q, k, v: attention_eager(q, k, v, causal=True)
            self._decode_attn = decode_eager_static if self.attention == "eager-static" else decode_eager_batched
        if self.pointwise == "triton":
            from kernels.pointwise import triton_pointwise as fused

            self._rms_norm, self._rope, self._swiglu = fused.rms_norm, fused.apply_rope, fused.swiglu
            self._fused_decode = True
        else:
            self._rms_norm, self._rope, self._swiglu = _ref.rms_norm, _ref.apply_rope, _ref.swiglu
            self._fused_decode = False
        from kernels.pointwise.triton_decode_fused import add_rms_norm, rope_qkv_to_cache

        self._add_rms_norm, self._rope_qkv_to_cache = add_rms_norm, rope_qkv_to_cache
        for name in _DUPLICATED_KERNELS.get(self.duplicate or "", ()):
            setattr(self, name, _twice(getattr(self, name)))

    def _mm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self._mm2d(x.reshape(-1, x.shape[-1]), w).reshape(*x.shape[:-1], w.shape[-1])

    def _mlp(self, x: torch.Tensor, layer: dict) -> torch.Tensor:
        h = self._rms_norm(x, layer["mlp_norm"], self.cfg.norm_eps)
        return x + self._mm(self._swiglu(self._mm(h, layer["w13"])), layer["w2"])

    def _qkv(self, x: torch.Tensor, layer: dict, cos: torch.Tensor, sin: torch.Tensor):
        cfg = self.cfg
        B, S, _ = x.shape
        h = self._rms_norm(x, layer["attn_norm"], cfg.norm_eps)
        q, k, v = self._mm(h, layer["wqkv"]).split([cfg.dim, cfg.kv_dim, cfg.kv_dim], dim=-1)
        q = self._rope(q.view(B, S, cfg.n_heads, cfg.head_dim), cos, sin)       # [B, S, H, D]
        k = self._rope(k.view(B, S, cfg.n_kv_heads, cfg.head_dim), cos, sin)    # [B, S, KV, D]
        return q, k, v.view(B, S, cfg.n_kv_heads, cfg.head_dim)

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, S], B <= batch -> logits of the last position [B, vocab]; fills cache rows 0..B-1
        at positions 0..S-1 (B < batch serves warm-ups that compile the kernels at this length)."""
        cfg = self.cfg
        B, S = tokens.shape
        if B > self.batch or S > self.max_len:
            raise UsageError(f"tokens must be [<= batch={self.batch}, <= {self.max_len}], got {list(tokens.shape)}")
        x = self.tok_emb[tokens]                                                 # [B, S, dim]
        cos, sin = self.cos[:S], self.sin[:S]
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(x, layer, cos, sin)
            self.k_cache[i][:B, :, :S] = k.transpose(1, 2)                      # [B, KV, S, D]
            self.v_cache[i][:B, :, :S] = v.transpose(1, 2)
            o = self._prefill_attn(q.transpose(1, 2).contiguous(), self.k_cache[i][:B, :, :S],
                                   self.v_cache[i][:B, :, :S])                   # [B, H, S, D]
            x = x + self._mm(o.transpose(1, 2).reshape(B, S, cfg.dim), layer["wo"])
            x = self._mlp(x, layer)
        return self._mm(self._rms_norm(x[:, -1], self.norm, cfg.norm_eps), self.lm_head)  # [B, vocab]

    @torch.no_grad()
    def decode_step(self, token: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """token [B] at position `pos` (int64 [1] on the device), lengths int32 [B] = pos + 1 ->
        logits [B, vocab]. No host syncs unless attention="eager" (its decode reads the lengths), so
        the other paths can be captured in a CUDA graph."""
        if self._fused_decode:
            return self._decode_step_fused(token, pos, lengths)
        cfg = self.cfg
        B = token.shape[0]
        x = self.tok_emb[token][:, None]                                         # [B, 1, dim]
        cos, sin = self.cos.index_select(0, pos), self.sin.index_select(0, pos)  # [1, D/2]
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(x, layer, cos, sin)
            self.k_cache[i].index_copy_(2, pos, k.transpose(1, 2))              # write [B, KV, 1, D] at pos
            self.v_cache[i].index_copy_(2, pos, v.transpose(1, 2))
            o = self._decode_attn(q[:, 0], self.k_cache[i], self.v_cache[i], lengths)  # [B, H, D]
            x = x + self._mm(o.reshape(B, 1, cfg.dim), layer["wo"])
            x = self._mlp(x, layer)
        return self._mm(self._rms_norm(x[:, 0], self.norm, cfg.norm_eps), self.lm_head)

    def _decode_step_fused(self, token: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """decode_step on the Triton path with the launch-bound pointwise work fused
        (kernels/pointwise/triton_decode_fused.py): RoPE and both cache writes in one kernel, and each
        residual add in the RMSNorm that follows it (the next layer's, or the final norm). Same values
        as the unfused step up to fp32 summation order; ~5 launches fewer per layer."""
        add_rms_norm, rope_qkv_to_cache = self._add_rms_norm, self._rope_qkv_to_cache
        cfg = self.cfg
        B = token.shape[0]
        x = self.tok_emb[token][:, None]                                         # [B, 1, dim]
        h = self._rms_norm(x, self.layers[0]["attn_norm"], cfg.norm_eps)
        for i, layer in enumerate(self.layers):
            q = rope_qkv_to_cache(self._mm(h, layer["wqkv"]), self.cos, self.sin, pos,
                                  self.k_cache[i], self.v_cache[i])              # [B, H, D]
            o = self._decode_attn(q, self.k_cache[i], self.v_cache[i], lengths)  # [B, H, D]
            x, h = add_rms_norm(x, self._mm(o.reshape(B, 1, cfg.dim), layer["wo"]), layer["mlp_norm"], cfg.norm_eps)
            mlp = self._mm(self._swiglu(self._mm(h, layer["w13"])), layer["w2"])
            after = self.layers[i + 1]["attn_norm"] if i + 1 < len(self.layers) else self.norm
            x, h = add_rms_norm(x, mlp, after, cfg.norm_eps)
        return self._mm(h[:, 0], self.lm_head)


# ---------------------------------------------------------------------------------------------
# Exact counts (FLOPs: 2 per multiply-add; RMSNorm, RoPE, SiLU and softmax not counted)

def _linear_flops(cfg: LlamaConfig, tokens: int) -> int:
    per_token_layer = 2 * (cfg.dim * (cfg.dim + 2 * cfg.kv_dim) + cfg.dim * cfg.dim + 3 * cfg.dim * cfg.ffn_dim)
    return tokens * cfg.n_layers * per_token_layer


def prefill_flops(cfg: LlamaConfig, batch: int, seq_len: int) -> int:
    """Linear layers over every token, causal attention counted exactly, LM head on the last token."""
    attn = 4 * batch * cfg.n_heads * cfg.head_dim * (seq_len * (seq_len + 1) // 2) * cfg.n_layers
    return _linear_flops(cfg, batch * seq_len) + attn + 2 * batch * cfg.dim * cfg.vocab_size


def decode_step_flops(cfg: LlamaConfig, batch: int, ctx_len: int) -> int:
    """One new token per sequence attending to `ctx_len` cached positions (itself included)."""
    attn = 4 * batch * cfg.n_heads * cfg.head_dim * ctx_len * cfg.n_layers
    return _linear_flops(cfg, batch) + attn + 2 * batch * cfg.dim * cfg.vocab_size


def weight_bytes(cfg: LlamaConfig, dtype_bytes: int = 2) -> int:
    """Weights a forward pass reads: all but the embedding table (only B x S rows of it are read)."""
    return (cfg.params() - cfg.vocab_size * cfg.dim) * dtype_bytes


def prefill_min_bytes(cfg: LlamaConfig, batch: int, seq_len: int, dtype_bytes: int = 2) -> int:
    """Weights once, embedding rows read, K and V written to the cache."""
    kv_written = 2 * cfg.n_layers * batch * seq_len * cfg.kv_dim * dtype_bytes
    return weight_bytes(cfg, dtype_bytes) + batch * seq_len * cfg.dim * dtype_bytes + kv_written


def decode_step_min_bytes(cfg: LlamaConfig, batch: int, ctx_len: int, dtype_bytes: int = 2) -> int:
    """Weights once, the valid cache read once (K and V), the new K and V written."""
    kv_read = 2 * cfg.n_layers * batch * ctx_len * cfg.kv_dim * dtype_bytes
    kv_written = 2 * cfg.n_layers * batch * cfg.kv_dim * dtype_bytes
    return weight_bytes(cfg, dtype_bytes) + batch * cfg.dim * dtype_bytes + kv_read + kv_written
