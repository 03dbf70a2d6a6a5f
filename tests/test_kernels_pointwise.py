"""CPU tests of the fused pointwise kernels (RMSNorm, RoPE, SwiGLU) in the Triton interpreter,
against their PyTorch references on the same inputs, at awkward sizes and strided views."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
pytestmark = pytest.mark.interpreter

from kernelprof.errors import ShapeError  # noqa: E402
from kernels.pointwise import reference as ref  # noqa: E402
from kernels.pointwise import triton_pointwise as fused  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# fp32: the same math in a different order (the kernel's tree sum vs torch's mean): ~1e-6.
# fp16: one rounding of the output differs at most, ~1 ulp (~1e-3 relative).
TOL = {torch.float32: 1e-5, torch.float16: 2e-3}


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("D", [96, 128, 200])
def test_rms_norm_matches_reference_including_strided_rows(dtype, D):
    g = torch.Generator().manual_seed(D)
    x = torch.randn(3, 5, D + 8, generator=g).to(dtype).to(DEVICE)[..., :D]  # rows strided by D + 8
    w = (1 + 0.1 * torch.randn(D, generator=g)).to(dtype).to(DEVICE)
    out = fused.rms_norm(x, w, 1e-5)
    assert out.shape == x.shape and out.dtype == dtype
    assert rel(out, ref.rms_norm(x, w, 1e-5)) < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("heads", [3, 4])
def test_rope_matches_reference_on_a_fused_qkv_slice(dtype, heads):
    B, S, Dh, kv = 2, 7, 16, 2
    g = torch.Generator().manual_seed(heads)
    qkv = torch.randn(B, S, (heads + 2 * kv) * Dh, generator=g).to(dtype).to(DEVICE)
    q = qkv[..., :heads * Dh].view(B, S, heads, Dh)  # a strided view, as the model passes it
    ang = torch.outer(torch.arange(S, dtype=torch.float32), torch.rand(Dh // 2, generator=g))
    cos, sin = ang.cos().to(DEVICE), ang.sin().to(DEVICE)
    out = fused.apply_rope(q, cos, sin)
    assert out.shape == (B, S, heads, Dh) and out.is_contiguous()
    assert rel(out, ref.apply_rope(q, cos, sin)) < TOL[dtype]
    # Decode: one position picked from the tables.
    one = fused.apply_rope(q[:, :1], cos[3:4], sin[3:4])
    assert rel(one, ref.apply_rope(q[:, :1], cos[3:4], sin[3:4])) < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("F", [100, 1500])
def test_swiglu_matches_reference_across_blocks(dtype, F):
    gu = torch.randn(4, 2, 2 * F, generator=torch.Generator().manual_seed(F)).to(dtype).to(DEVICE)
    out = fused.swiglu(gu)
    assert out.shape == (4, 2, F)
    assert rel(out, ref.swiglu(gu)) < TOL[dtype]


def test_bad_inputs_are_shape_errors():
    x = torch.randn(2, 8, device=DEVICE)
    with pytest.raises(ShapeError, match="w must have shape"):
        fused.rms_norm(x, torch.ones(4, device=DEVICE), 1e-5)
    with pytest.raises(ShapeError, match="even last dimension"):
        fused.swiglu(torch.randn(2, 7, device=DEVICE))
    q = torch.randn(1, 3, 2, 16, device=DEVICE)
    with pytest.raises(ShapeError, match="cos must have shape"):
        fused.apply_rope(q, torch.ones(3, 4, device=DEVICE), torch.ones(3, 8, device=DEVICE))
    with pytest.raises(ShapeError, match="power of two"):
        fused.apply_rope(torch.randn(1, 3, 2, 12, device=DEVICE), torch.ones(3, 6, device=DEVICE),
                         torch.ones(3, 6, device=DEVICE))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_rope_with_heads_over_several_programs(dtype):
    # Dh = 128: 8 heads per program, so 12 heads take two programs per token, the second half-masked.
    B, S, H, Dh = 1, 3, 12, 128
    g = torch.Generator().manual_seed(12)
    x = torch.randn(B, S, H, Dh, generator=g).to(dtype).to(DEVICE)
    ang = torch.outer(torch.arange(S, dtype=torch.float32), torch.rand(Dh // 2, generator=g))
    cos, sin = ang.cos().to(DEVICE), ang.sin().to(DEVICE)
    assert rel(fused.apply_rope(x, cos, sin), ref.apply_rope(x, cos, sin)) < TOL[dtype]
