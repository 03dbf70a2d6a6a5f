"""CPU tests of the Triton flash-attention forward (Triton interpreter), the attention registry
entry and its counts.

Errors are relative norm errors ||out - ref|| / ||ref|| against the eager reference run in float64
on the same (already rounded) inputs.
"""
from __future__ import annotations


import pytest

torch = pytest.importorskip("torch")

# These run Triton kernels on CPU tensors in the interpreter, which tests/conftest.py turns on when
# there is no GPU (CI). On a GPU machine: TRITON_INTERPRET=1 pytest -m interpreter.
pytestmark = pytest.mark.interpreter
pytest.importorskip("triton")

from kernelprof.errors import NotSupportedError, ShapeError  # noqa: E402
from kernels import AttentionShape, get_op  # noqa: E402
from kernels.attention.triton_flash import HAS_TENSOR_DESCRIPTOR  # noqa: E402
from kernels.attention import (  # noqa: E402
    attention_eager,
    attention_flops,
    attention_min_bytes,
    attention_pairs,
    flash_attention,
)

DEVICE = "cpu"

# Tolerances on the relative norm error, by dtype:
# - float16: the output is rounded to fp16 (u = 2^-11 = 4.9e-4 per element, ~2.8e-4 in norm) and the
#   probabilities P are rounded to fp16 before the P V product (another relative u per term, which
#   averages down over the keys). 2e-3 is 4u: both roundings plus fp32 accumulation-order effects.
# - float32: fp32 everywhere (the interpreter does fp32 dots exactly); exp2 of scaled scores and the
#   running rescale cost a few ulps: errors are ~1e-7. 1e-5 leaves 100x margin.
RTOL = {torch.float16: 2e-3, torch.float32: 1e-5}


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.to(torch.float64)
    return float((out.to(torch.float64) - ref).norm() / ref.norm())


def make_qkv(b, hq, hkv, s, d, dtype, seed):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    def r(*shape):
        return torch.randn(shape, generator=g, device=DEVICE, dtype=torch.float32).to(dtype)
    return r(b, hq, s, d), r(b, hkv, s, d), r(b, hkv, s, d)


def reference(q, k, v, causal, sm_scale=None):
    return attention_eager(q.double(), k.double(), v.double(), causal, sm_scale=sm_scale)


# (batch, q_heads, kv_heads, seq_len, head_dim): awkward lengths 1, 17, 129 (not multiples of the
# 32x16 interpreter tiles), GQA ratios 1, 4, 8, head dims 64 and 128.
CASES = [
    (1, 2, 2, 1, 64),
    (2, 2, 2, 17, 64),
    (1, 4, 1, 129, 64),
    (1, 8, 1, 33, 64),
    (1, 8, 2, 17, 128),
    (1, 2, 2, 64, 128),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("b,hq,hkv,s,d", CASES)
def test_flash_attention_matches_float64_reference(b, hq, hkv, s, d, causal, dtype):
    q, k, v = make_qkv(b, hq, hkv, s, d, dtype, seed=s + hq)
    out = torch.full_like(q, float("nan"))
    o = flash_attention(q, k, v, causal, out=out)
    assert o is out
    assert not torch.isnan(o).any(), "some output elements were never written"
    assert rel_err(o, reference(q, k, v, causal)) < RTOL[dtype]


def test_flash_attention_cross_attention_and_custom_scale():
    # non-causal with kv_len != q_len, and a scale other than 1/sqrt(d)
    g = torch.Generator(device=DEVICE).manual_seed(3)
    q = torch.randn(1, 4, 20, 64, generator=g, device=DEVICE)
    k = torch.randn(1, 2, 45, 64, generator=g, device=DEVICE)
    v = torch.randn(1, 2, 45, 64, generator=g, device=DEVICE)
    o = flash_attention(q, k, v, False, sm_scale=0.3)
    assert rel_err(o, reference(q, k, v, False, sm_scale=0.3)) < RTOL[torch.float32]


@pytest.mark.skipif(not HAS_TENSOR_DESCRIPTOR, reason="this triton has no tensor descriptors")
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("b,hq,hkv,s,d", [(1, 2, 2, 1, 64), (2, 4, 1, 129, 64), (1, 8, 2, 17, 128)])
def test_flash_attention_tma_path(b, hq, hkv, s, d, causal, dtype):
    # Tensor descriptors zero-fill reads and clip writes at the sequence end of each head; the NaN
    # in the output buffer's neighbouring heads would show a write that strayed past it.
    q, k, v = make_qkv(b, hq, hkv, s, d, dtype, seed=7 * s + hq)
    out = torch.full_like(q, float("nan"))
    o = flash_attention(q, k, v, causal, out=out, use_tma=True)
    assert not torch.isnan(o).any()
    assert rel_err(o, reference(q, k, v, causal)) < RTOL[dtype]
    assert rel_err(o, flash_attention(q, k, v, causal)) < RTOL[dtype]


def test_gqa_equals_mha_with_repeated_kv_heads():
    # Cross-check: GQA with 8 query heads over 2 KV heads == MHA with each KV head repeated 4 times.
    q, k, v = make_qkv(1, 8, 2, 40, 64, torch.float32, seed=5)
    gqa = flash_attention(q, k, v, True)
    mha = flash_attention(q, k.repeat_interleave(4, dim=1), v.repeat_interleave(4, dim=1), True)
    assert rel_err(gqa, mha) < RTOL[torch.float32]


def test_causal_first_row_is_first_value():
    # Row 0 of causal attention sees only key 0: its output is exactly v[..., 0, :].
    q, k, v = make_qkv(1, 2, 2, 17, 64, torch.float32, seed=6)
    o = flash_attention(q, k, v, True)
    torch.testing.assert_close(o[:, :, 0], v[:, :, 0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("b,hq,hkv,s,d", [CASES[2], CASES[4]])
def test_unfolded_softmax_form_matches_the_folded_one(b, hq, hkv, s, d, causal, monkeypatch):
    # The interpreter runs one config, folded (FOLD_SCALE) by default; the GPU autotuner picks either
    # form per shape, so both must be right. fp32: the two differ only by the FMA's single rounding.
    import kernels.attention.triton_flash as tf

    q, k, v = make_qkv(b, hq, hkv, s, d, torch.float32, seed=s)
    folded = flash_attention(q, k, v, causal)
    monkeypatch.setattr(tf, "INTERPRET_FOLD_SCALE", False)
    unfolded = flash_attention(q, k, v, causal)
    ref = reference(q, k, v, causal)
    assert rel_err(unfolded, ref) < RTOL[torch.float32] and rel_err(folded, ref) < RTOL[torch.float32]
    assert float((folded - unfolded).abs().max()) < 1e-5


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("b,hq,hkv,s,d", [CASES[2], CASES[4], (1, 2, 1, 96, 32)])
def test_pipelined_score_loop_matches_the_folded_one_bit_for_bit(b, hq, hkv, s, d, causal):
    # PIPELINE_QK only moves the next block's Q K^T ahead of the current softmax: same operations in
    # the same order as the folded form, so the outputs must be identical, not merely close.
    import triton

    q, k, v = make_qkv(b, hq, hkv, s, d, torch.float32, seed=s + 1)
    folded = flash_attention(q, k, v, causal)
    tile = {"BLOCK_M": 32, "BLOCK_N": 16, "FOLD_SCALE": True}
    pipelined = flash_attention(q, k, v, causal, config=triton.Config({**tile, "PIPELINE_QK": True}))
    assert rel_err(pipelined, reference(q, k, v, causal)) < RTOL[torch.float32]
    assert torch.equal(pipelined, folded)


def test_flash_attention_rejects_bad_inputs():
    q, k, v = make_qkv(1, 4, 2, 16, 64, torch.float16, seed=0)
    with pytest.raises(ShapeError, match=r"k must have shape \[batch, kv_heads, kv_len, head_dim\] = \[1, \*, \*, 64\]"):
        flash_attention(q, k[..., :32], v)
    with pytest.raises(ShapeError, match="multiple of kv_heads"):
        flash_attention(q, k[:, :1].expand(1, 3, 16, 64), v[:, :1].expand(1, 3, 16, 64))
    with pytest.raises(ShapeError, match="q_len == kv_len"):
        flash_attention(q, k[:, :, :8], v[:, :, :8], True)
    with pytest.raises(ShapeError, match="head_dim must be one of"):
        flash_attention(q[..., :48], k[..., :48], v[..., :48])
    with pytest.raises(ShapeError, match="dtype"):
        flash_attention(q, k.float(), v.float())
    with pytest.raises(ShapeError, match="4 dimensions"):
        flash_attention(q[0], k, v)
    with pytest.raises(ShapeError, match="sm_scale must be a non-negative"):
        flash_attention(q, k, v, sm_scale=-0.1)


def test_attention_counts_exact():
    # Kept pairs of a causal mask, counted by brute force, equal S*(S+1)/2.
    for s in (1, 17, 129):
        assert attention_pairs(s, s, True) == int(torch.ones(s, s).tril().sum()) == s * (s + 1) // 2
    b, h, s, d = 4, 32, 4096, 128
    assert attention_flops(b, h, s, s, d, False) == 4 * b * h * d * s * s
    assert attention_flops(b, h, s, s, d, True) == 4 * b * h * d * s * (s + 1) // 2
    # GQA: q and o with 32 heads, k and v with 8
    assert attention_min_bytes(b, 32, 8, s, s, d, torch.bfloat16) == 2 * d * b * s * (2 * 32 + 2 * 8)


def test_attention_registry():
    op = get_op("attention")
    shape = op.parse_shape("b=4,h=32,s=4096,d=128,causal")
    assert shape == AttentionShape(4, 32, 32, 4096, 128, True)
    assert op.parse_shape("b=1,h=32,kv=8,s=100,d=64") == AttentionShape(1, 32, 8, 100, 64, False)
    assert op.parse_shape("b=1,h=8,s=9,d=64,causal=0").causal is False
    for bad in ("b=1,h=8,d=64", "b=1,h=8,kv=3,s=9,d=64", "b=1,h=8,s=9,d=64,foo=1", "b=x,h=8,s=9,d=64",
                "b=1,h=8,s=9,d=64,causal=maybe", "b=1,b=2,h=8,s=9,d=64"):
        with pytest.raises(ShapeError):
            op.parse_shape(bad)
    assert set(op.variants) >= {"triton", "eager", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-math"}
    assert ("triton-tma" in op.variants) == HAS_TENSOR_DESCRIPTOR
    assert op.flops(shape) == 4 * 4 * 32 * 128 * 4096 * 4097 // 2
    small = op.parse_shape("b=1,h=4,kv=2,s=33,d=64,causal")
    inputs = op.make_inputs(small, torch.float16, torch.device(DEVICE), 0)
    ref = reference(*inputs[:3], causal=True)
    ran = []
    for name, fn in op.variants.items():
        try:
            o = fn(*inputs)
        except NotSupportedError as exc:
            assert str(exc)  # a sentence, not an empty error
            continue
        ran.append(name)
        assert o.shape == inputs[0].shape, name
        # fp16 variants on the CPU: the eager and math paths round the scores and P to fp16
        # (u = 4.9e-4 each, growing the error over the softmax's exponent): 4e-3 is 8u.
        assert rel_err(o, ref) < 4e-3, name
    assert {"triton", "eager", "sdpa-math"} <= set(ran)
