"""CPU tests of the Triton decode-attention kernels (Triton interpreter), the decode registry entry
and its counts.

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
from kernels import DecodeShape, decode_lengths, get_op  # noqa: E402
from kernels.decode import (  # noqa: E402
    decode_attention,
    decode_attention_nosplit,
    decode_eager,
    decode_eager_batched,
    decode_flops,
    decode_min_bytes,
    decode_sdpa,
)

DEVICE = "cpu"

# Tolerances on the relative norm error, by dtype:
# - float16: the output is rounded to fp16 (u = 2^-11 = 4.9e-4 per element, ~2.8e-4 in norm) and P is
#   rounded to fp16 before the P V product; the split-K partials and the merge stay fp32. 2e-3 is 4u.
# - float32: fp32 throughout (exact fp32 dots in the interpreter); errors are ~1e-7. 1e-5 is 100x.
RTOL = {torch.float16: 2e-3, torch.float32: 1e-5}


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.to(torch.float64)
    return float((out.to(torch.float64) - ref).norm() / ref.norm())


def make_case(b, hq, hkv, max_len, d, lengths, dtype, seed, poison_tail=True):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    def r(*shape):
        return torch.randn(shape, generator=g, device=DEVICE, dtype=torch.float32).to(dtype)
    q, k, v = r(b, hq, d), r(b, hkv, max_len, d), r(b, hkv, max_len, d)
    if poison_tail:
        # Positions past each length must never be read: NaN there would poison the output.
        for i, n in enumerate(lengths):
            k[i, :, n:] = float("nan")
            v[i, :, n:] = float("nan")
    return q, k, v, torch.tensor(lengths, dtype=torch.int32, device=DEVICE)


def reference(q, k, v, lengths):
    return decode_eager(q.double(), k.double(), v.double(), lengths)


# (batch, q_heads, kv_heads, max_len, head_dim, lengths): GQA ratios 1, 4, 8; lengths 1, max_len,
# and values that are not multiples of the 16-token interpreter tile.
CASES = [
    (3, 4, 4, 129, 64, [1, 129, 17]),
    (2, 8, 2, 40, 128, [40, 23]),
    (4, 8, 1, 33, 64, [33, 1, 16, 17]),
    (1, 32, 4, 200, 64, [200]),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("num_splits", [None, 1, 3, 64], ids=["auto", "nosplit", "split3", "split64"])
@pytest.mark.parametrize("b,hq,hkv,max_len,d,lengths", CASES)
def test_decode_matches_float64_reference(b, hq, hkv, max_len, d, lengths, num_splits, dtype):
    # split64 asks for more chunks than the cache has tiles: most chunks are empty for short sequences.
    q, k, v, lens = make_case(b, hq, hkv, max_len, d, lengths, dtype, seed=max_len + hq)
    out = torch.full_like(q, float("nan"))
    o = decode_attention(q, k, v, lens, num_splits=num_splits, out=out)
    assert o is out
    assert not torch.isnan(o).any(), "an output was never written, or a position past its length was read"
    assert rel_err(o, reference(q, k, v, lens)) < RTOL[dtype]


def test_nosplit_variant_equals_splitk():
    q, k, v, lens = make_case(3, 8, 2, 100, 64, [100, 7, 64], torch.float32, seed=1)
    a = decode_attention(q, k, v, lens, num_splits=4)
    b = decode_attention_nosplit(q, k, v, lens)
    assert rel_err(a, b) < RTOL[torch.float32]


def test_batched_decode_equals_one_request_at_a_time():
    lengths = [1, 50, 97, 31]
    q, k, v, lens = make_case(4, 8, 2, 97, 64, lengths, torch.float16, seed=2)
    batched = decode_attention(q, k, v, lens, num_splits=3)
    for i, n in enumerate(lengths):
        # request i alone, with a cache trimmed to exactly its length
        one = decode_attention(q[i:i + 1], k[i:i + 1, :, :n].contiguous(), v[i:i + 1, :, :n].contiguous(),
                               lens[i:i + 1], num_splits=2)
        # Same inputs, different split boundaries: only fp32 summation order and the final fp16
        # rounding differ, so the two agree to the fp16 tolerance.
        assert rel_err(batched[i:i + 1], one) < RTOL[torch.float16], f"request {i}"


def test_length_one_returns_the_first_value():
    q, k, v, lens = make_case(2, 4, 2, 20, 64, [1, 1], torch.float32, seed=3)
    o = decode_attention(q, k, v, lens, num_splits=2)
    torch.testing.assert_close(o, v[:, :, 0].repeat_interleave(2, dim=1), rtol=1e-6, atol=1e-6)


def test_sdpa_reference_agrees_with_eager():
    q, k, v, lens = make_case(3, 8, 2, 30, 64, [30, 5, 12], torch.float32, seed=4, poison_tail=False)
    assert rel_err(decode_sdpa(q, k, v, lens), reference(q, k, v, lens)) < RTOL[torch.float32]
    # every sequence full: no mask
    full = torch.full((3,), 30, dtype=torch.int32, device=DEVICE)
    assert rel_err(decode_sdpa(q, k, v, full), reference(q, k, v, full)) < RTOL[torch.float32]


def test_decode_rejects_bad_inputs():
    q, k, v, lens = make_case(2, 8, 2, 16, 64, [16, 3], torch.float16, seed=0, poison_tail=False)
    with pytest.raises(ShapeError, match=r"lengths must have dtype in \(int32\), got int64"):
        decode_attention(q, k, v, lens.long())
    with pytest.raises(ShapeError, match=r"lengths must have shape \[batch\] = \[2\], got \[3\]"):
        decode_attention(q, k, v, torch.ones(3, dtype=torch.int32))
    with pytest.raises(ShapeError, match=r"v_cache must have shape .* = \[2, 2, 16, 64\], got \[2, 2, 8, 64\]"):
        decode_attention(q, k, v[:, :, :8], lens)
    with pytest.raises(ShapeError, match="multiple of kv_heads"):
        decode_attention(q[:, :7], k, v, lens)
    with pytest.raises(ShapeError, match="num_splits"):
        decode_attention(q, k, v, lens, num_splits=0)
    with pytest.raises(ShapeError, match=r"lengths\[1\] must be in 1..max_len=16, got 0"):
        decode_eager(q, k, v, torch.tensor([16, 0], dtype=torch.int32))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"b{c[0]}-hq{c[1]}-hkv{c[2]}-len{c[3]}")
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=str)
def test_decode_eager_batched_matches_per_sequence(case, dtype):
    # The LLM's eager mode runs the batched form; the per-sequence one is the oracle. Same rounding
    # points (fp32 softmax, P rounded to dtype) so they agree to the dtype's tolerance. The tail is
    # finite (a zeroed cache), which the batched form needs: it reads up to max(lengths).
    b, hq, hkv, max_len, d, lengths = case
    q, k, v, lens = make_case(b, hq, hkv, max_len, d, lengths, dtype, seed=7, poison_tail=False)
    out = decode_eager_batched(q, k, v, lens)
    assert out.shape == q.shape and out.dtype == dtype
    assert rel_err(out, reference(q, k, v, lens)) < RTOL[dtype]


def test_decode_eager_batched_reads_nothing_past_the_longest():
    # All lengths 9 of max_len 16: positions 9..15 are NaN and must not be read at all.
    q, k, v, lens = make_case(2, 4, 2, 16, 64, [9, 9], torch.float32, seed=3)
    assert torch.isfinite(decode_eager_batched(q, k, v, lens)).all()
    with pytest.raises(ShapeError, match=r"lengths must be in 1..max_len=16"):
        decode_eager_batched(q, k, v, torch.tensor([16, 0], dtype=torch.int32))
    with pytest.raises(ShapeError, match="multiple of kv_heads"):
        decode_eager_batched(q[:, :3], k, v, lens)


def test_decode_counts_exact():
    # B=16, 32 q heads over 8 KV heads, 8192 tokens, d=128, bf16
    lengths = [8192] * 16
    assert decode_flops(32, 128, lengths) == 4 * 32 * 128 * 8192 * 16
    kv = 2 * 8 * 128 * 8192 * 16 * 2  # K and V, bf16
    qo = 2 * 16 * 32 * 128 * 2  # q and o
    assert decode_min_bytes(32, 8, 128, lengths, torch.bfloat16) == kv + qo
    # mixed lengths count only the valid part of the cache
    assert decode_min_bytes(4, 2, 64, [1, 10], torch.float16) == 2 * 64 * (2 * 2 * 11 + 2 * 2 * 4)


def test_decode_registry():
    op = get_op("decode")
    assert op.parse_shape(op.default_shape) == DecodeShape(16, 32, 8, 8192, 128)
    s = op.parse_shape("b=4,h=8,kv=2,ctx=100,d=64,max=128,mixed")
    assert s == DecodeShape(4, 8, 2, 100, 64, max_len=128, lengths="mixed")
    assert op.parse_shape("b=4,h=8,ctx=100,d=64,lengths=mixed").lengths == "mixed"
    assert decode_lengths(s) == [25, 50, 75, 100]
    assert decode_lengths(DecodeShape(3, 8, 2, 10, 64)) == [10, 10, 10]
    for bad in ("b=4,h=8,d=64", "b=4,h=8,kv=3,ctx=9,d=64", "b=4,h=8,ctx=100,d=64,max=50",
                "b=4,h=8,ctx=100,d=64,lengths=odd", "b=4,h=8,ctx=100,d=64,zz=1"):
        with pytest.raises(ShapeError):
            op.parse_shape(bad)
    assert set(op.variants) >= {"triton-splitk", "triton-nosplit", "eager", "sdpa"}
    assert op.flops(s) == 4 * 8 * 64 * 250
    assert op.min_bytes(s, torch.float16) == 2 * 64 * (2 * 2 * 250 + 2 * 4 * 8)
    small = op.parse_shape("b=3,h=8,kv=2,ctx=37,d=64,max=40,mixed")
    inputs = op.make_inputs(small, torch.float16, torch.device(DEVICE), 0)
    assert inputs[1].shape == (3, 2, 40, 64) and inputs[3].tolist() == [13, 25, 37]
    mask = inputs[4]  # SDPA's mask, built once with the inputs
    assert mask.shape == (3, 1, 1, 40) and mask.sum().item() == 13 + 25 + 37
    full = op.make_inputs(op.parse_shape("b=2,h=8,kv=2,ctx=40,d=64"), torch.float16, torch.device(DEVICE), 0)
    assert full[4] is None  # every cache full: no mask, so SDPA may pick any backend
    ref = reference(*inputs[:4])
    for name, fn in op.variants.items():
        try:
            o = fn(*inputs)
        except NotSupportedError:
            continue
        assert o.shape == inputs[0].shape, name
        # fp16 eager/SDPA on the CPU round scores and P to fp16 too: 4e-3 is 8u.
        assert rel_err(o, ref) < 4e-3, name
