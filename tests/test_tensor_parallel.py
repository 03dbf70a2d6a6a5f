"""Tensor-parallel Llama on CPU (gloo): 2 and 4 processes match the single-process model."""
from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kernelprof.errors import UsageError
from kernelprof.methods.llm.config import LlamaConfig, get_config
from kernelprof.methods.llm.generate import GenerateShape, generate
from kernelprof.methods.llm.model import Llama
from kernelprof.methods.llm.tensor_parallel import TPLlama, build_tp_model, check_tp

# tiny's 2 KV heads split over 2 ranks only; this one splits over 4 (8 heads, 4 KV heads).
TINY_TP4 = LlamaConfig("tiny-tp4", 128, 2, 8, 4, 256, 512)
SHAPE = GenerateShape(batch=2, input_len=7, output_len=5)  # 7: not a multiple of anything
KW = dict(device="cpu", dtype=torch.float32, seed=3, attention="eager")
# fp32: the all-reduce sums tp partial products in another order than one matmul over the full
# width: differences of a few fp32 ulps (1.2e-7 relative) times sqrt(K), far below 1e-5.
RTOL, ATOL = 1e-5, 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prompt(cfg: LlamaConfig) -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    return torch.randint(0, cfg.vocab_size, (SHAPE.batch, SHAPE.input_len), generator=g)


def _worker(rank: int, world: int, port: int, cfg: LlamaConfig, out: str, device: str = "cpu") -> None:
    torch.set_num_threads(1)
    backend = "gloo" if device == "cpu" else "nccl"
    dev = device if device == "cpu" else f"cuda:{rank}"
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        m = TPLlama(cfg, tp=world, rank=rank, batch=SHAPE.batch, max_len=SHAPE.max_len, **{**KW, "device": dev})
        prompt = _prompt(cfg).to(dev)
        logits = m.prefill(prompt)
        m.resize_cache(SHAPE.batch, SHAPE.max_len)
        tokens = generate(m, prompt, SHAPE, "eager")
        torch.save({"logits": logits.cpu(), "tokens": tokens.cpu(), "kv_heads": m.k_cache[0].shape[1]},
                   f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("cfg,world", [(get_config("tiny"), 2), (TINY_TP4, 4)])
def test_tp_matches_single_process(tmp_path, cfg, world):
    ref = Llama(cfg, batch=SHAPE.batch, max_len=SHAPE.max_len, **KW)
    prompt = _prompt(cfg)
    ref_logits = ref.prefill(prompt)
    ref.resize_cache(SHAPE.batch, SHAPE.max_len)
    ref_tokens = generate(ref, prompt, SHAPE, "eager")
    out = str(tmp_path / "r")
    mp.spawn(_worker, args=(world, free_port(), cfg, out), nprocs=world, join=True)
    for rank in range(world):
        got = torch.load(f"{out}.{rank}")
        assert got["kv_heads"] == cfg.n_kv_heads // world  # each rank caches only its KV heads
        torch.testing.assert_close(got["logits"], ref_logits, rtol=RTOL, atol=ATOL)
        assert torch.equal(got["tokens"], ref_tokens)


def test_tp1_is_the_plain_model():
    m = build_tp_model(get_config("tiny"), tp=1, rank=0, batch=1, max_len=4, **KW)
    assert type(m) is Llama


def test_indivisible_split_is_refused():
    with pytest.raises(UsageError, match=r"n_kv_heads=2 not divisible by 4"):
        check_tp(get_config("tiny"), 4)
    with pytest.raises(UsageError, match=r"n_heads=32.*not divisible by 3"):
        check_tp(get_config("llama-3.1-8b"), 3)
    check_tp(get_config("llama-3.1-8b"), 8)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_tp2_nccl_matches_single_gpu(tmp_path, monkeypatch):
    """The same check over NCCL on two GPUs (eager fp32; weights drawn on each GPU from the seed)."""
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "0")
    cfg = get_config("tiny")
    ref = Llama(cfg, batch=SHAPE.batch, max_len=SHAPE.max_len, **{**KW, "device": "cuda:0"})
    prompt = _prompt(cfg).to("cuda:0")
    ref_logits = ref.prefill(prompt).cpu()
    ref.resize_cache(SHAPE.batch, SHAPE.max_len)
    ref_tokens = generate(ref, prompt, SHAPE, "eager").cpu()
    out = str(tmp_path / "r")
    mp.spawn(_worker, args=(2, free_port(), cfg, out, "cuda"), nprocs=2, join=True)
    for rank in range(2):
        got = torch.load(f"{out}.{rank}")
        # TF32 is off for fp32 matmuls by default; the tolerance is the CPU one's reason.
        torch.testing.assert_close(got["logits"], ref_logits, rtol=RTOL, atol=ATOL)
        assert torch.equal(got["tokens"], ref_tokens)
