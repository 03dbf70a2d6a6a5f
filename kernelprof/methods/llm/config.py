"""Llama model shapes by name (no torch: the CLI lists them in `--help`)."""
from __future__ import annotations

from dataclasses import dataclass

from kernelprof.errors import UsageError


@dataclass(frozen=True)
class LlamaConfig:
    name: str
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    vocab_size: int
    rope_theta: float = 500_000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    def params(self) -> int:
        """Parameters: embedding, per layer (qkv, o, gate/up, down, 2 norms), final norm, LM head."""
        per_layer = (self.dim * (self.dim + 2 * self.kv_dim) + self.dim * self.dim
                     + 3 * self.dim * self.ffn_dim + 2 * self.dim)
        return 2 * self.vocab_size * self.dim + self.n_layers * per_layer + self.dim


MODES = ("optimized", "eager", "eager-graphs", "eager-graphs-fused")
# mode -> the model's (attention, pointwise); every mode but "eager" replays its decode steps from a
# CUDA graph. The two middle modes are the ladder's rungs between eager and optimized: CUDA graphs on
# the eager references (decode over the static cache, device-masked), then the fused pointwise kernels.
MODE_KERNELS = {"optimized": ("triton", "triton"), "eager": ("eager", "eager"),
                "eager-graphs": ("eager-static", "eager"), "eager-graphs-fused": ("eager-static", "triton")}


# Shapes of the released models (hidden size, layers, heads, KV heads, MLP width, vocabulary).
CONFIGS = {
    "llama-3.2-1b": LlamaConfig("llama-3.2-1b", 2048, 16, 32, 8, 8192, 128256),
    "llama-3.2-3b": LlamaConfig("llama-3.2-3b", 3072, 28, 24, 8, 8192, 128256),
    "llama-3.1-8b": LlamaConfig("llama-3.1-8b", 4096, 32, 32, 8, 14336, 128256),
    # For tests: the same structure at a size the Triton interpreter runs in seconds.
    "tiny": LlamaConfig("tiny", 128, 2, 4, 2, 256, 512),
}


def get_config(name: str) -> LlamaConfig:
    if name not in CONFIGS:
        raise UsageError(f"unknown model {name!r}; known: {sorted(CONFIGS)}")
    return CONFIGS[name]
