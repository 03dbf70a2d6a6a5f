"""fp8 linear layers on the GPU: the Triton row quantizer equals the reference bit for bit, the GEMM
equals the reference GEMM, and the 8B-shaped model's fp8 path runs under a CUDA graph."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("m,k", [(1, 4096), (8, 4096), (17, 14336), (64, 6144), (512, 4096)])
def test_triton_row_quantizer_equals_the_reference_bit_for_bit(m, k):
    import torch

    from kernels.gemm.fp8_rowwise import M_ALIGN, quantize_rows
    from kernels.gemm.reference import quantize_rows_reference

    torch.manual_seed(m)
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16) * 3
    x[0, :7] = 0  # zeros and a spike: the scale follows the max
    x[-1, 5] = 1000.0
    rows = -(-m // M_ALIGN) * M_ALIGN
    y, s = quantize_rows(x, rows)
    ry, rs = quantize_rows_reference(x)
    assert y.shape == (rows, k) and s.shape == (rows, 1)
    assert torch.equal(s[:m], rs) and torch.equal(y[:m].view(torch.uint8), ry.view(torch.uint8))
    assert y[m:].float().eq(0).all() and s[m:].eq(1).all()


@pytest.mark.parametrize("m,k,n", [(1, 4096, 6144), (8, 4096, 4096), (64, 14336, 4096), (512, 4096, 28672)])
def test_fp8_linear_equals_the_reference_gemm(m, k, n):
    """Same quantized operands, same cuBLASLt call: equal up to the padded rows' effect on the
    kernel's choice (none expected: allclose at bf16's last bit)."""
    import torch

    from kernels.gemm.fp8_rowwise import fp8_linear, quantize_weight
    from kernels.gemm.reference import fp8_linear_reference

    torch.manual_seed(0)
    w = quantize_weight((torch.randn(k, n, device="cuda") * 0.02).bfloat16())
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    ours, ref = fp8_linear(x, w), fp8_linear_reference(x, w)
    assert ours.shape == (m, n)
    torch.testing.assert_close(ours, ref, rtol=2 ** -7, atol=1e-3)
    exact = x.float() @ w.dequantized()
    assert ((ours.float() - exact).norm() / exact.norm()).item() < 0.05  # only the rows' rounding left


def test_fp8_model_decodes_under_a_cuda_graph_as_from_python():
    from llm_gpu_checks import assert_graph_decode_matches_stepped

    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.model import Llama

    m = Llama(get_config("llama-3.2-1b"), batch=2, max_len=64 + 8, attention="triton", gemm="fp8")
    assert_graph_decode_matches_stepped(m, "optimized", 64, 8)
