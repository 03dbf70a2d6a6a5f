"""Fixed-length generation on the Llama-shaped model, with its phases recorded by the Profiler.

Two execution modes, the paper's comparison at kernel resolution:
- "optimized": Triton flash attention for prefill, the Triton split-K decode kernel, fused Triton
  RMSNorm, RoPE and SwiGLU (kernels/pointwise), and every decode step replayed from one CUDA graph
  (no Python between steps; small prefills from a graph too);
- "eager": the reference attention that materializes its scores, a Python loop per decode step
  that reads lengths on the host (what "native PyTorch" code often does).
Output lengths are fixed (no EOS), as in the paper: N output tokens are the prefill's token plus
N - 1 decode steps.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from kernelprof.errors import UsageError
from kernelprof.methods.llm.config import MODE_KERNELS, MODES, LlamaConfig  # MODES re-exported
from kernelprof.methods.llm.model import Llama


def graphed_decode(mode: str) -> bool:
    """Whether `mode` replays each decode step from a CUDA graph (no Python between steps)."""
    return mode != "eager"


@dataclass(frozen=True)
class GenerateShape:
    batch: int
    input_len: int
    output_len: int

    def __post_init__(self) -> None:
        if self.batch < 1 or self.input_len < 1 or self.output_len < 1:
            raise UsageError(f"batch, input and output lengths must be >= 1, got {self.batch}, "
                             f"{self.input_len}, {self.output_len}")

    @property
    def decode_steps(self) -> int:
        return self.output_len - 1

    @property
    def max_len(self) -> int:
        return self.input_len + self.output_len


def build_model(cfg: LlamaConfig, shape: GenerateShape, mode: str, *, gemm: str = "cublas", seed: int = 0,
                device: str = "cuda") -> Llama:
    if mode not in MODES:
        raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
    attention, pointwise = MODE_KERNELS[mode]
    return Llama(cfg, batch=shape.batch, max_len=shape.max_len, device=device, seed=seed,
                 attention=attention, pointwise=pointwise, gemm=gemm)


def random_prompt(cfg: LlamaConfig, shape: GenerateShape, device: str = "cuda", seed: int = 0) -> torch.Tensor:
    g = torch.Generator(device=device)
    g.manual_seed(seed + 1)
    return torch.randint(0, cfg.vocab_size, (shape.batch, shape.input_len), generator=g, device=device)


class DecodeGraph:
    """One decode step captured in a CUDA graph over static buffers; each replay is the next step.

    The graph reads the token, position and lengths buffers, writes the next token into the token
    buffer and into `out` at column pos - start, then advances position and lengths by one.
    """

    def __init__(self, model: Llama, start_pos: int, steps: int, *, advance: bool = True) -> None:
        dev = model.device
        B = model.batch
        self.model, self.start_pos = model, start_pos
        self.tok = torch.zeros(B, dtype=torch.long, device=dev)
        self.pos = torch.full((1,), start_pos, dtype=torch.long, device=dev)
        self.lengths = torch.full((B,), start_pos + 1, dtype=torch.int32, device=dev)
        self.out = torch.zeros(B, max(1, steps), dtype=torch.long, device=dev)
        self._start = torch.full((1,), start_pos, dtype=torch.long, device=dev)
        # Warm up outside the graph (autotuning, allocator); these writes land in cache slots that
        # the real steps overwrite before reading them.
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                self._step(advance=False)
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            # advance=False: every replay is the same step at a fixed context length (steady state).
            self._step(advance=advance)
        torch.cuda.synchronize()

    def _step(self, advance: bool) -> None:
        logits = self.model.decode_step(self.tok, self.pos, self.lengths)
        self.tok.copy_(logits.argmax(-1))
        if advance:
            col = (self.pos - self._start).clamp_(0, self.out.shape[1] - 1)
            self.out.index_copy_(1, col, self.tok[:, None])
            self.pos.add_(1)
            self.lengths.add_(1)

    def reset(self, first_token: torch.Tensor) -> None:
        self.tok.copy_(first_token)
        self.pos.fill_(self.start_pos)
        self.lengths.fill_(self.start_pos + 1)

    def replay(self) -> None:
        self.graph.replay()


# Up to this many prompt tokens per batch, the optimized path replays the prefill from a CUDA graph:
# below it the ~20 launches per layer from Python take longer than the GPU's work (an 8B-shaped
# batch-1, 512-token prefill spent 44 ms in-run on an H100 while its kernels need ~15 ms), and the
# graph's private pool only has to hold a small prefill's activations.
PREFILL_GRAPH_MAX_TOKENS = 16384


class PrefillGraph:
    """The prefill of a static prompt buffer [B, S] captured in a CUDA graph; `run` copies a prompt in."""

    def __init__(self, model: Llama, batch: int, input_len: int) -> None:
        self.prompt = torch.zeros(batch, input_len, dtype=torch.long, device=model.device)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):  # compile and autotune outside the capture
                model.prefill(self.prompt)
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = model.prefill(self.prompt)  # [B, vocab], rewritten by every replay
        torch.cuda.synchronize()

    def replay(self) -> None:
        self.graph.replay()

    def run(self, prompt: torch.Tensor) -> torch.Tensor:
        self.prompt.copy_(prompt)
        self.graph.replay()
        return self.logits


def use_prefill_graph(shape: GenerateShape, mode: str) -> bool:
    return mode == "optimized" and shape.batch * shape.input_len <= PREFILL_GRAPH_MAX_TOKENS


def generate(model: Llama, prompt: torch.Tensor, shape: GenerateShape, mode: str, *, prof: Any = None,
             graph: DecodeGraph | None = None, prefill_graph: PrefillGraph | None = None) -> torch.Tensor:
    """Generate `shape.output_len` tokens per sequence; returns tokens [B, output_len].

    With a Profiler, records phases "prefill" and "decode" (each decode step a nested "step").
    In every mode but eager, pass a `DecodeGraph` built for this model and shape (built here if absent),
    and optionally a `PrefillGraph` for the prompt's shape.
    """
    phase = (lambda name, kind="phase": prof.phase(name, kind=kind)) if prof is not None \
        else (lambda name, kind="phase": nullcontext())
    S = shape.input_len
    with phase("prefill"):
        logits = prefill_graph.run(prompt) if prefill_graph is not None else model.prefill(prompt)
        first = logits.argmax(-1)
    tokens = [first]
    if shape.decode_steps == 0:
        return first[:, None]
    if graphed_decode(mode):
        graph = graph or DecodeGraph(model, S, shape.decode_steps)
        graph.reset(first)
        with phase("decode"):
            for _ in range(shape.decode_steps):
                with phase("step", kind="step"):
                    graph.replay()
        return torch.cat([first[:, None], graph.out[:, :shape.decode_steps]], dim=1)
    tok = first
    with phase("decode"):
        for i in range(shape.decode_steps):
            with phase("step", kind="step"):
                pos = torch.tensor([S + i], device=model.device)
                lengths = torch.full((model.batch,), S + i + 1, dtype=torch.int32, device=model.device)
                tok = model.decode_step(tok, pos, lengths).argmax(-1)
                tokens.append(tok)
    return torch.stack(tokens, dim=1)


def memory_needed_bytes(cfg: LlamaConfig, shape: GenerateShape, mode: str) -> int:
    """Weights + KV cache + the largest activations (prefill MLP, and eager's score matrix)."""
    weights = cfg.params() * 2
    cache = 2 * cfg.n_layers * shape.batch * cfg.kv_dim * shape.max_len * 2
    tokens = shape.batch * shape.input_len
    act = tokens * (cfg.dim * 6 + cfg.ffn_dim * 4) * 2 + shape.batch * cfg.vocab_size * 4
    if MODE_KERNELS.get(mode, ("eager",))[0] != "triton":
        act += 3 * shape.batch * cfg.n_heads * shape.input_len * shape.input_len * 4  # fp32 scores, softmax
    return weights + cache + act


def check_fits(cfg: LlamaConfig, shape: GenerateShape, mode: str, device: int = 0) -> None:
    """UsageError, before any allocation, if the model and batch cannot fit in free GPU memory."""
    free, _total = torch.cuda.mem_get_info(device)
    need = memory_needed_bytes(cfg, shape, mode)
    if need > 0.95 * free:
        raise UsageError(f"{cfg.name} with batch {shape.batch}, {shape.input_len} in / {shape.output_len} out "
                         f"({mode}) needs about {need / 2**30:.1f} GiB; {free / 2**30:.1f} GiB is free on GPU {device}")
