"""The Llama-shaped model on CPU (tiny config, fp32, Triton kernels in the interpreter): KV-cache
consistency, Triton vs eager attention paths, exact FLOP counts, and the generate loop."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernelprof.errors import UsageError  # noqa: E402
from kernelprof.methods.llm.generate import GenerateShape, generate, memory_needed_bytes  # noqa: E402
from kernelprof.methods.llm.config import CONFIGS, get_config  # noqa: E402
from kernelprof.methods.llm.model import Llama, decode_step_flops, prefill_flops  # noqa: E402

pytestmark = pytest.mark.interpreter
CFG = get_config("tiny")


def model(attention="triton", batch=2, max_len=24, seed=0):
    return Llama(CFG, batch=batch, max_len=max_len, device="cpu", dtype=torch.float32, seed=seed, attention=attention)


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_decode_step_continues_the_prefill_exactly():
    # Logits of token S from (prefill S, then one decode step) equal those of a prefill of S+1.
    tokens = torch.randint(0, CFG.vocab_size, (2, 13), generator=torch.Generator().manual_seed(1))
    m = model()
    m.prefill(tokens[:, :12])
    step = m.decode_step(tokens[:, 12], torch.tensor([12]), torch.full((2,), 13, dtype=torch.int32))
    whole = model().prefill(tokens)
    # fp32 throughout; different reduction orders (flash vs split-K) leave ~1e-6.
    assert rel(step, whole) < 1e-4


def test_triton_and_eager_paths_agree():
    tokens = torch.randint(0, CFG.vocab_size, (2, 17), generator=torch.Generator().manual_seed(2))
    a, b = model("triton"), model("eager")
    assert rel(a.prefill(tokens), b.prefill(tokens)) < 1e-4
    pos, lengths = torch.tensor([17]), torch.full((2,), 18, dtype=torch.int32)
    tok = tokens[:, -1]
    assert rel(a.decode_step(tok, pos, lengths), b.decode_step(tok, pos, lengths)) < 1e-4


def test_linear_flops_match_the_matmuls_the_model_runs():
    m = model()
    counted = []
    mm = m._mm2d

    def counting(x, w):
        counted.append(2 * x.shape[0] * x.shape[1] * w.shape[1])
        return mm(x, w)

    m._mm2d = counting
    B, S = 2, 9
    m.prefill(torch.randint(0, CFG.vocab_size, (B, S)))
    attn = 4 * B * CFG.n_heads * CFG.head_dim * (S * (S + 1) // 2) * CFG.n_layers
    assert sum(counted) + attn == prefill_flops(CFG, B, S)
    counted.clear()
    m.decode_step(torch.zeros(B, dtype=torch.long), torch.tensor([S]), torch.full((B,), S + 1, dtype=torch.int32))
    attn = 4 * B * CFG.n_heads * CFG.head_dim * (S + 1) * CFG.n_layers
    assert sum(counted) + attn == decode_step_flops(CFG, B, S + 1)


def test_eager_generate_has_fixed_length():
    shape = GenerateShape(2, 8, 5)
    m = model("eager", max_len=shape.max_len)
    out = generate(m, torch.randint(0, CFG.vocab_size, (2, 8)), shape, "eager")
    assert out.shape == (2, 5)


def test_configs_and_errors():
    assert CONFIGS["llama-3.1-8b"].params() == pytest.approx(8.03e9, rel=0.01)  # Llama-3.1-8B: 8.03 B
    assert CONFIGS["llama-3.2-1b"].head_dim == 64
    with pytest.raises(UsageError, match="unknown model"):
        get_config("llama-70b")
    with pytest.raises(UsageError):
        GenerateShape(0, 1, 1)
    big = memory_needed_bytes(CONFIGS["llama-3.1-8b"], GenerateShape(64, 8192, 512), "eager")
    assert big > 80 * 2**30  # would not fit an 80 GB card: check_fits refuses it before allocating


def test_resized_cache_keeps_weights_and_a_smaller_prefill_batch_fills_its_rows():
    tokens = torch.randint(0, CFG.vocab_size, (3, 9), generator=torch.Generator().manual_seed(4))
    m = model(batch=1, max_len=4)
    m.resize_cache(3, 16)
    assert m.k_cache[0].shape[0] == 3 and m.k_cache[0].shape[2] == 16 and m.cos.shape[0] == 16
    # Same seed, same weights: the resized model's logits equal a fresh model's of that shape.
    assert rel(m.prefill(tokens), model(batch=3, max_len=16).prefill(tokens)) < 1e-6
    m2 = model(batch=3, max_len=16)
    assert rel(m2.prefill(tokens[:1]), m.prefill(tokens)[:1]) < 1e-5
    with pytest.raises(UsageError):
        m.prefill(torch.zeros(4, 9, dtype=torch.long))


@pytest.mark.parametrize("attention", ["triton", "eager"])
def test_duplicated_kernel_classes_leave_the_outputs_unchanged(attention):
    # The marginal-energy method runs one class twice; its joules are only that class's if nothing else
    # changes: same logits (bit for bit) from prefill and decode, the cache included.
    tokens = torch.randint(0, CFG.vocab_size, (2, 9), generator=torch.Generator().manual_seed(3))
    pos, lengths = torch.tensor([9]), torch.full((2,), 10, dtype=torch.int32)

    def run(m):
        return m.prefill(tokens), m.decode_step(tokens[:, -1], pos, lengths)

    base = run(model(attention))
    for cls in ("gemm", "attention", "pointwise"):
        m = model(attention)
        m.set_duplicate(cls)
        got = run(m)
        assert all(torch.equal(a, b) for a, b in zip(got, base)), cls
    with pytest.raises(UsageError, match="kernel_class"):
        model(attention).set_duplicate("copy")


def test_a_duplicated_class_runs_each_of_its_kernels_twice(monkeypatch):
    calls = []
    real = torch.matmul
    monkeypatch.setattr(torch, "matmul", lambda *a: calls.append(1) or real(*a))
    m = model("eager")
    tokens = torch.randint(0, CFG.vocab_size, (2, 5), generator=torch.Generator().manual_seed(4))
    m.prefill(tokens)
    once = len(calls)
    m.set_duplicate("gemm")
    m.prefill(tokens)
    linear = 4 * CFG.n_layers + 1  # wqkv, wo, w13, w2 per layer and the LM head; eager attention adds 2 a layer
    assert once == linear + 2 * CFG.n_layers and len(calls) - once == once + linear
    m.set_duplicate(None)
    calls.clear()
    m.prefill(tokens)
    assert len(calls) == once


@pytest.mark.parametrize("mode", ["eager-graphs", "eager-graphs-fused"])
def test_the_ladders_middle_modes_decode_as_eager_does(mode):
    """The graph-capturable eager modes (static-cache decode masked on the device; then the fused
    pointwise kernels) give eager's logits, prefill and a decode step at mixed lengths."""
    from kernelprof.methods.llm.generate import MODE_KERNELS

    attention, pointwise = MODE_KERNELS[mode]
    tokens = torch.randint(0, CFG.vocab_size, (2, 11), generator=torch.Generator().manual_seed(4))
    ref = model("eager")
    m = Llama(CFG, batch=2, max_len=24, device="cpu", dtype=torch.float32, seed=0, attention=attention,
              pointwise=pointwise)
    assert m._fused_decode == (pointwise == "triton")
    assert rel(m.prefill(tokens), ref.prefill(tokens)) < 1e-4
    pos, lengths = torch.tensor([11]), torch.tensor([12, 7], dtype=torch.int32)  # the second is shorter
    tok = tokens[:, -1]
    assert rel(m.decode_step(tok, pos, lengths), ref.decode_step(tok, pos, lengths)) < 1e-4


def test_static_cache_decode_equals_the_host_read_one_and_reads_no_lengths_on_the_host(monkeypatch):
    from kernels.decode.reference import decode_eager_batched, decode_eager_static

    g = torch.Generator().manual_seed(5)
    q = torch.randn(3, 8, 16, generator=g)
    k = torch.zeros(3, 2, 40, 16)
    v = torch.zeros(3, 2, 40, 16)
    lengths = torch.tensor([40, 5, 23], dtype=torch.int32)
    for b, n in enumerate(lengths.tolist()):  # the cache past each length stays zero, as the model's does
        k[b, :, :n] = torch.randn(2, n, 16, generator=g)
        v[b, :, :n] = torch.randn(2, n, 16, generator=g)
    want = decode_eager_batched(q, k, v, lengths)

    def no_host_read(*a, **kw):
        raise AssertionError("read lengths on the host")
    monkeypatch.setattr(torch.Tensor, "tolist", no_host_read)
    monkeypatch.setattr(torch.Tensor, "item", no_host_read)
    got = decode_eager_static(q, k, v, lengths)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)


def test_every_mode_passes_the_cli_checks_and_a_bad_one_is_refused():
    """`kernelprof llm --mode eager-graphs` was refused by parse_mode after the validator let it through."""
    from kernelprof.methods.llm.config import MODES
    from kernelprof.methods.llm.run import parse_mode
    from kernelprof.validate import check_llm_request

    for mode in MODES:
        check_llm_request("tiny", 1, 8, 8, mode)
        assert parse_mode(mode) == [mode]
    assert parse_mode("both") == ["optimized", "eager"]
    for bad in ("fast", "Eager"):
        with pytest.raises(UsageError, match="mode must be"):
            check_llm_request("tiny", 1, 8, 8, bad)
        with pytest.raises(UsageError, match="mode must be"):
            parse_mode(bad)
