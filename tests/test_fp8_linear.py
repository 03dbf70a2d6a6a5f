"""fp8 e4m3 linear layers (kernels/gemm/fp8_rowwise.py, reference in kernels/gemm/reference.py) and the
LLM's gemm="fp8" path, on CPU (the reference; the Triton quantizer is checked in tests/test_fp8_linear_gpu.py)."""
from __future__ import annotations

import pytest
import torch

from kernels.gemm.fp8_rowwise import FP8_MAX, quantize_weight
from kernels.gemm.reference import fp8_linear_reference, quantize_rows_reference

pytestmark = pytest.mark.skipif(getattr(torch, "float8_e4m3fn", None) is None, reason="no fp8 dtype in this torch")


def test_weight_scales_put_each_column_max_at_the_fp8_limit():
    torch.manual_seed(0)
    w = torch.randn(64, 48) * torch.logspace(-3, 1, 48)  # columns four decades apart
    q = quantize_weight(w)
    assert q.shape == (64, 48) and q.w_nk.shape == (48, 64) and q.w_nk.is_contiguous()
    assert q.w_nk.float().abs().amax(dim=1).eq(FP8_MAX).all()  # no column saturates, none wastes range
    # e4m3 keeps 3 mantissa bits: each element within 2^-4 of itself (round to nearest), per column
    err = (q.dequantized() - w).abs()
    assert (err <= w.abs() * 2 ** -4 + q.scale_n * 2 ** -9).all()


def test_rows_quantized_per_row_and_an_all_zero_row_stays_zero():
    x = torch.randn(4, 40, dtype=torch.bfloat16)
    x[2] = 0
    x8, s = quantize_rows_reference(x)
    assert s.shape == (4, 1) and s.dtype == torch.float32
    assert torch.isfinite(s).all() and x8[2].float().eq(0).all()
    assert (x8.float() * s - x.float()).abs().max() <= x.float().abs().max() * 2 ** -4


def test_fp8_linear_is_within_e4m3_precision_of_the_bf16_product():
    """Random data: the relative error of a K=512 dot product is about the elements' rms rounding
    error (~3% for e4m3 on both operands); 6% leaves room for an unlucky seed, 0.5% would mean the
    scales were not applied (or applied twice)."""
    torch.manual_seed(1)
    w = (torch.randn(512, 96) * 0.02).bfloat16()
    x = torch.randn(7, 512).bfloat16()
    y = fp8_linear_reference(x, quantize_weight(w))
    ref = x.float() @ w.float()
    rel = ((y.float() - ref).norm() / ref.norm()).item()
    assert y.shape == (7, 96) and y.dtype == torch.bfloat16
    assert 0.005 < rel < 0.06


def test_llm_fp8_model_matches_bf16_within_fp8_error_and_keeps_the_lm_head_bf16():
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.model import FP8_WEIGHTS, Llama
    from kernels.gemm.fp8_rowwise import Fp8Weight

    cfg = get_config("tiny")
    ref = Llama(cfg, batch=2, max_len=16, device="cpu", attention="eager", seed=3)
    fp8 = Llama(cfg, batch=2, max_len=16, device="cpu", attention="eager", seed=3, gemm="fp8")
    assert all(isinstance(layer[n], Fp8Weight) for layer in fp8.layers for n in FP8_WEIGHTS)
    assert fp8.lm_head.dtype == torch.bfloat16
    tokens = torch.randint(0, cfg.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0))
    a, b = ref.prefill(tokens).float(), fp8.prefill(tokens).float()
    rel = ((a - b).norm() / a.norm()).item()
    assert 0.001 < rel < 0.15, rel  # two blocks of fp8 GEMMs; identical would mean fp8 never ran
    ref.quantize_fp8()  # in place, the same weights: now the same model
    assert torch.equal(ref.prefill(tokens), fp8.prefill(tokens))


def test_fp8_rejects_a_bad_gemm_name():
    from kernelprof.errors import UsageError
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.model import Llama

    with pytest.raises(UsageError, match="gemm must be one of"):
        Llama(get_config("tiny"), batch=1, max_len=4, device="cpu", attention="eager", gemm="int4")


@pytest.mark.interpreter
def test_triton_quantizer_scales_equal_the_references_under_the_interpreter():
    """The kernel's row scales divide as torch does (div_rn, not x * 1/448). Its fp8 cast is checked on
    the GPU only: the interpreter's cast rounds differently (2026-12-07: 357 of 15,000 elements)."""
    from kernels.gemm.fp8_rowwise import _quantize_rows_kernel

    x = torch.randn(5, 3000, dtype=torch.bfloat16, generator=torch.Generator().manual_seed(7)) * 3
    x[3] = 0
    y = torch.empty(5, 3000, dtype=torch.float8_e4m3fn)
    s = torch.ones(5, 1)
    _quantize_rows_kernel[(5,)](x, y, s, 3000, x.stride(0), y.stride(0), BLOCK_K=1024)
    _, ref = quantize_rows_reference(x)
    assert torch.equal(s, ref)
