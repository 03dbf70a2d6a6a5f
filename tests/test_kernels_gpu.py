"""GPU tests of the subject kernels at production shapes, bf16 and fp16, against float64 references
and the vendor implementations. Marked `gpu`: tests/conftest.py skips them without CUDA and under
TRITON_INTERPRET=1 (with CUDA it leaves the interpreter off unless you set it).

Errors are relative norm errors ||out - ref|| / ||ref||, the reference computed in float64 from the
same (already rounded) inputs, so only the kernel's arithmetic and its output rounding count. Every
check draws fresh random inputs.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernelprof.errors import NotSupportedError  # noqa: E402
from kernels import get_op  # noqa: E402
from kernels.attention import attention_eager, flash_attention, sdpa  # noqa: E402
from kernels.attention.triton_flash import HAS_TENSOR_DESCRIPTOR as ATTN_HAS_TMA  # noqa: E402
from kernels.decode import (decode_attention, decode_attention_nosplit, decode_eager, decode_eager_batched,  # noqa: E402
                            decode_sdpa)
from kernels.gemm import gemm, gemm_cublas, gemm_persistent, gemm_reference  # noqa: E402
from kernels.gemm.triton_gemm import HAS_TENSOR_DESCRIPTOR  # noqa: E402

pytestmark = pytest.mark.gpu

# Unit roundoff of the output dtypes: 2^-8 for bf16 (8 significand bits), 2^-11 for fp16.
U = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}

# GEMM: the only rounding is C's, to the output dtype (~u/sqrt(3) in norm); fp32 accumulation over
# K <= 8192 adds ~sqrt(K) * 2^-24 ~ 5e-6, negligible. 2u allows the rounding and nothing more.
GEMM_RTOL = {dt: 2 * u for dt, u in U.items()}
# Attention and decode: the output is rounded, and P is rounded to the input dtype before P V (the
# standard flash-attention choice; another ~u per term, averaging down over keys). 4u.
ATTN_RTOL = {dt: 4 * u for dt, u in U.items()}
# Two low-precision implementations against each other: each carries its own error, so the sum.
PAIR_FACTOR = 2

_seed = iter(range(10_000, 1_000_000))


def fresh(shape, dtype, scale=1.0):
    g = torch.Generator(device="cuda").manual_seed(next(_seed))
    return (torch.randn(shape, generator=g, device="cuda", dtype=torch.float32) * scale).to(dtype)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.to(torch.float64)
    return float((out.to(torch.float64) - ref).norm() / ref.norm())


def poisoned(shape, dtype):
    return torch.full(shape, float("nan"), dtype=dtype, device="cuda")


def capability() -> tuple[int, int]:
    return torch.cuda.get_device_capability()


# ---------------------------------------------------------------------------------------------- GEMM
# bf16 at every shape; fp16 at two (each dtype/shape pair compiles and autotunes its own kernels, and
# GPU time is scarce): the arithmetic is the same, only the rounding differs.
BF16, FP16 = torch.bfloat16, torch.float16
GEMM_CASES = [(BF16, 4096, 4096, 4096), (BF16, 8192, 8192, 8192), (BF16, 16, 4096, 4096), (BF16, 1024, 1024, 1024),
              (BF16, 1000, 1032, 1048), (BF16, 1023, 257, 333), (FP16, 4096, 4096, 4096), (FP16, 1023, 257, 333)]


@pytest.mark.parametrize("dtype,m,n,k", GEMM_CASES)
def test_gemm_triton(m, n, k, dtype):
    a, b = fresh((m, k), dtype), fresh((k, n), dtype)
    c = gemm(a, b, out=poisoned((m, n), dtype))
    assert not torch.isnan(c).any()
    assert rel_err(c, gemm_reference(a, b)) < GEMM_RTOL[dtype]
    assert rel_err(gemm_cublas(a, b), gemm_reference(a, b)) < GEMM_RTOL[dtype]  # the oracle itself


@pytest.mark.skipif(not HAS_TENSOR_DESCRIPTOR, reason="this triton has no tensor descriptors")
@pytest.mark.parametrize("dtype,m,n,k", [c for c in GEMM_CASES if c[2] % 8 == 0 and c[3] % 8 == 0])
def test_gemm_persistent(m, n, k, dtype):
    if capability()[0] < 9:
        pytest.skip("TMA needs compute capability >= 9.0")
    a, b = fresh((m, k), dtype), fresh((k, n), dtype)
    c = gemm_persistent(a, b, out=poisoned((m, n), dtype))
    assert not torch.isnan(c).any()
    assert rel_err(c, gemm_reference(a, b)) < GEMM_RTOL[dtype]


@pytest.mark.parametrize("m,n,k", [(4096, 4096, 4096), (256, 1024, 512)])
def test_gemm_fp8(m, n, k):
    if capability() < (8, 9):
        pytest.skip("fp8 needs compute capability >= 8.9")
    op = get_op("gemm")
    shape = op.parse_shape(f"{m}x{n}x{k}")
    a, b, sa, sb = op.make_inputs(shape, torch.float8_e4m3fn, torch.device("cuda"), next(_seed))
    ref = gemm_reference(a, b, sa, sb)  # exact products of the fp8 values, in float64
    # Output is bf16: GEMM_RTOL[bf16]. Hopper's fp8 MMA accumulates with fewer mantissa bits than
    # fp32 (known), which stays well below the bf16 output rounding at K <= 4096.
    outs = {"triton": gemm(a, b, sa, sb)}
    if HAS_TENSOR_DESCRIPTOR and capability()[0] >= 9:
        outs["triton-persistent"] = gemm_persistent(a, b, sa, sb)
    outs["cublas"] = gemm_cublas(a, b, sa, sb)
    for name, c in outs.items():
        assert c.dtype == torch.bfloat16, name
        assert rel_err(c, ref) < GEMM_RTOL[torch.bfloat16], name


# ------------------------------------------------------------------------------------------ attention
def attention_reference(q, k, v, causal):
    """float64 eager attention, one sequence at a time to bound the score matrix's memory."""
    return torch.cat([attention_eager(q[i:i + 1].double(), k[i:i + 1].double(), v[i:i + 1].double(), causal)
                      for i in range(q.shape[0])])


ATTN_SHAPES = [(2, 32, 32, 4096, 128), (1, 32, 8, 4096, 128), (2, 16, 2, 1023, 64), (1, 8, 1, 129, 128), (3, 4, 4, 1, 64)]
ATTN_CASES = ([(BF16, c, *shape) for shape in ATTN_SHAPES for c in (False, True)]
              + [(FP16, True, 2, 32, 32, 4096, 128), (FP16, False, 2, 16, 2, 1023, 64)])


@pytest.mark.parametrize("dtype,causal,b,hq,hkv,s,d", ATTN_CASES)
def test_flash_attention(b, hq, hkv, s, d, causal, dtype):
    q, k, v = fresh((b, hq, s, d), dtype), fresh((b, hkv, s, d), dtype), fresh((b, hkv, s, d), dtype)
    o = flash_attention(q, k, v, causal, out=poisoned(q.shape, dtype))
    assert not torch.isnan(o).any()
    ref = attention_reference(q, k, v, causal)
    assert rel_err(o, ref) < ATTN_RTOL[dtype]
    if ATTN_HAS_TMA and capability()[0] >= 9:
        o_tma = flash_attention(q, k, v, causal, out=poisoned(q.shape, dtype), use_tma=True)
        assert not torch.isnan(o_tma).any()
        assert rel_err(o_tma, ref) < ATTN_RTOL[dtype]
    try:
        flash = sdpa(q, k, v, causal, backend="flash")
    except NotSupportedError:
        return
    assert rel_err(o, flash) < PAIR_FACTOR * ATTN_RTOL[dtype]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_flash_attention_every_config(causal):
    # The autotuner runs only its fastest config on each shape; a config that is wrong (e.g. the
    # pipelined score loop, PIPELINE_QK) could hide until it wins somewhere. Run each one directly,
    # with and without TMA, on a shape with several key blocks and a ragged tail (non-causal).
    from kernels.attention.triton_flash import attention_configs

    s = 1000 if not causal else 1024
    q, k, v = fresh((2, 8, s, 128), BF16), fresh((2, 2, s, 128), BF16), fresh((2, 2, s, 128), BF16)
    ref = attention_reference(q, k, v, causal)
    tma_ok = ATTN_HAS_TMA and capability()[0] >= 9
    for cfg in attention_configs(with_rejected=True):
        # Pointer loads (the default path) for every config; TMA for the pipelined loop, the newest code
        # (the other configs' TMA path runs in test_flash_attention): 20 compiles instead of 32.
        for tma in ([False, True] if tma_ok and cfg.kwargs.get("PIPELINE_QK") else [False]):
            o = flash_attention(q, k, v, causal, out=poisoned(q.shape, BF16), use_tma=tma, config=cfg)
            assert not torch.isnan(o).any(), (cfg, tma)
            assert rel_err(o, ref) < ATTN_RTOL[BF16], (cfg, tma)


# --------------------------------------------------------------------------------------------- decode
DECODE_SHAPES = ["b=16,h=32,kv=8,ctx=8192,d=128", "b=16,h=32,kv=8,ctx=8192,d=128,mixed",
                 "b=1,h=32,kv=8,ctx=32768,d=128", "b=64,h=32,kv=8,ctx=1024,d=128",
                 "b=5,h=8,kv=8,ctx=1000,d=64,max=1100,mixed", "b=4,h=32,kv=4,ctx=77,d=128,mixed"]
DECODE_CASES = [(BF16, s) for s in DECODE_SHAPES] + [(FP16, DECODE_SHAPES[1]), (FP16, DECODE_SHAPES[4])]


@pytest.mark.parametrize("dtype,shape", DECODE_CASES)
def test_decode(shape, dtype):
    op = get_op("decode")
    q, k, v, lengths, mask = op.make_inputs(op.parse_shape(shape), dtype, torch.device("cuda"), next(_seed))
    ref = decode_eager(q.double(), k.double(), v.double(), lengths)
    for name, fn in (("splitk", decode_attention), ("nosplit", decode_attention_nosplit)):
        o = fn(q, k, v, lengths, out=poisoned(q.shape, dtype))
        assert not torch.isnan(o).any(), name
        assert rel_err(o, ref) < ATTN_RTOL[dtype], name
    assert rel_err(decode_sdpa(q, k, v, lengths, mask), ref) < ATTN_RTOL[dtype]
    assert rel_err(decode_sdpa(q, k, v, lengths), ref) < ATTN_RTOL[dtype]  # mask built from lengths
    assert rel_err(decode_eager_batched(q, k, v, lengths), ref) < ATTN_RTOL[dtype]  # the LLM's eager mode


def test_decode_ignores_cache_past_lengths():
    # NaN past each length must not reach the output (masked loads, not multiplied-by-zero).
    op = get_op("decode")
    q, k, v, lengths, _ = op.make_inputs(op.parse_shape("b=8,h=32,kv=8,ctx=3000,d=128,mixed"), torch.bfloat16,
                                      torch.device("cuda"), next(_seed))
    for i, n in enumerate(lengths.tolist()):
        k[i, :, n:] = float("nan")
        v[i, :, n:] = float("nan")
    ref = decode_eager(q.double(), k.double(), v.double(), lengths)
    for splits in (None, 1, 7):
        o = decode_attention(q, k, v, lengths, num_splits=splits)
        assert not torch.isnan(o).any(), splits
        assert rel_err(o, ref) < ATTN_RTOL[torch.bfloat16], splits


def test_batched_decode_equals_one_request_at_a_time():
    op = get_op("decode")
    q, k, v, lengths, _ = op.make_inputs(op.parse_shape("b=6,h=32,kv=8,ctx=5000,d=128,mixed"), torch.float16,
                                      torch.device("cuda"), next(_seed))
    batched = decode_attention(q, k, v, lengths)
    for i, n in enumerate(lengths.tolist()):
        one = decode_attention(q[i:i + 1], k[i:i + 1, :, :n].contiguous(), v[i:i + 1, :, :n].contiguous(),
                               lengths[i:i + 1])
        assert rel_err(batched[i:i + 1], one) < PAIR_FACTOR * ATTN_RTOL[torch.float16], i


# ------------------------------------------------------------------------------------------- registry
@pytest.mark.parametrize("op_name,shape", [("gemm", "512x384x256"), ("attention", "b=1,h=8,kv=2,s=300,d=64,causal"),
                                           ("decode", "b=3,h=8,kv=2,ctx=700,d=128,mixed")])
def test_every_variant_runs_or_says_why(op_name, shape):
    op = get_op(op_name)
    sh = op.parse_shape(shape)
    for dtype in op.dtypes:
        inputs = op.make_inputs(sh, dtype, torch.device("cuda"), next(_seed))
        outs = {}
        for name, fn in op.variants.items():
            try:
                outs[name] = fn(*inputs)
            except NotSupportedError as exc:
                assert len(str(exc)) > 20, (name, str(exc))
        assert outs, f"no variant of {op_name} ran for {dtype}"
        first_name, first = next(iter(outs.items()))
        tol = PAIR_FACTOR * (GEMM_RTOL if op_name == "gemm" else ATTN_RTOL).get(first.dtype, 2 * 2.0**-8)
        for name, o in outs.items():
            assert o.shape == first.shape, name
            assert rel_err(o, first) < tol, (op_name, dtype, name, first_name)
