"""CPU tests of the Triton GEMM kernels (Triton interpreter), the gemm registry entry and its counts.

Errors are relative norm errors ||out - ref|| / ||ref|| against a float64 reference computed from
the same (already rounded) inputs, so only the kernel's own arithmetic and output rounding count.
"""
from __future__ import annotations


import pytest

torch = pytest.importorskip("torch")

# These run Triton kernels on CPU tensors in the interpreter, which tests/conftest.py turns on when
# there is no GPU (CI). On a GPU machine: TRITON_INTERPRET=1 pytest -m interpreter.
pytestmark = pytest.mark.interpreter
pytest.importorskip("triton")

from kernelprof.errors import NotSupportedError, ShapeError  # noqa: E402
from kernels import GemmShape, get_op  # noqa: E402
from kernels.gemm import gemm, gemm_flops, gemm_min_bytes, gemm_persistent, gemm_reference  # noqa: E402
from kernels.gemm.triton_gemm import HAS_TENSOR_DESCRIPTOR  # noqa: E402

DEVICE = "cpu"

# Tolerances on the relative norm error, by input dtype:
# - float16: C is rounded to fp16 (unit roundoff u = 2^-11 = 4.9e-4 per element, ~u/sqrt(3) = 2.8e-4
#   in norm); fp32 accumulation adds ~sqrt(K) * 2^-24, negligible at K <= 256. 1e-3 is 2u.
# - float32: no output rounding beyond fp32; accumulation error ~sqrt(K) * 6e-8 < 1e-6 at K <= 256
#   (the interpreter does fp32 dots exactly in numpy; no tf32 here). 1e-5 leaves 10x margin.
RTOL = {torch.float16: 1e-3, torch.float32: 1e-5}

SHAPES = [(1, 1, 1), (17, 33, 129), (129, 17, 33), (64, 64, 64), (100, 72, 56), (3, 40, 200)]


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.to(torch.float64)
    return float((out.to(torch.float64) - ref).norm() / ref.norm())


def poisoned(shape, dtype) -> torch.Tensor:
    return torch.full(shape, float("nan"), dtype=dtype, device=DEVICE)


def rand(shape, dtype, seed):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    return torch.randn(shape, generator=g, device=DEVICE, dtype=torch.float32).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_matches_float64_reference(m, n, k, dtype):
    a, b = rand((m, k), dtype, 1), rand((k, n), dtype, 2)
    out = poisoned((m, n), dtype)
    c = gemm(a, b, out=out)
    assert c is out
    assert not torch.isnan(c).any(), "some elements of C were never written"
    assert rel_err(c, gemm_reference(a, b)) < RTOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_gemm_accepts_strided_operands(dtype):
    # B given as the transpose of a row-major [N, K] (K contiguous) and A as a column slice.
    a_big = rand((40, 90), dtype, 3)
    a = a_big[:, 5:70]  # [40, 65], row stride 90
    b = rand((33, 65), dtype, 4).t()  # [65, 33], strides (1, 65)
    c = gemm(a, b)
    assert rel_err(c, gemm_reference(a, b)) < RTOL[dtype]


def test_gemm_with_scales_matches_reference():
    a, b = rand((20, 48), torch.float32, 5), rand((48, 24), torch.float32, 6)
    sa = torch.tensor([0.5], device=DEVICE)
    sb = torch.tensor([3.0], device=DEVICE)
    c = gemm(a, b, sa, sb)
    assert rel_err(c, gemm_reference(a, b, sa, sb)) < RTOL[torch.float32]


@pytest.mark.skipif(not HAS_TENSOR_DESCRIPTOR, reason="this triton has no tensor descriptors")
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("m,n,k", [(1, 8, 8), (17, 40, 136), (100, 72, 56), (64, 64, 64)])
def test_gemm_persistent_matches_reference(m, n, k, dtype):
    # TMA needs 16-byte aligned rows: N and K multiples of 8 (fp16) / 4 (fp32); M is free.
    a, b = rand((m, k), dtype, 7), rand((k, n), dtype, 8)
    out = poisoned((m, n), dtype)
    c = gemm_persistent(a, b, out=out)
    assert not torch.isnan(c).any()
    assert rel_err(c, gemm_reference(a, b)) < RTOL[dtype]
    # The K-contiguous layout of B (b = b_nk.T) takes the other descriptor path.
    bt = b.t().contiguous().t()
    assert rel_err(gemm_persistent(a, bt), gemm_reference(a, bt)) < RTOL[dtype]


@pytest.mark.skipif(not HAS_TENSOR_DESCRIPTOR, reason="this triton has no tensor descriptors")
def test_gemm_persistent_whole_tile_epilogue(monkeypatch):
    # The pinned interpreter config stores C in two halves (EPILOGUE_SUBTILE); check the other path.
    from kernels.gemm import triton_gemm

    cfg = triton_gemm._persistent_configs()[0]
    whole = triton_gemm.triton.Config({**cfg.kwargs, "EPILOGUE_SUBTILE": False})
    monkeypatch.setattr(triton_gemm, "_persistent_configs", lambda: [whole])
    a, b = rand((40, 72), torch.float16, 13), rand((72, 56), torch.float16, 14)
    c = gemm_persistent(a, b, out=poisoned((40, 56), torch.float16))
    assert not torch.isnan(c).any()
    assert rel_err(c, gemm_reference(a, b)) < RTOL[torch.float16]


@pytest.mark.skipif(not HAS_TENSOR_DESCRIPTOR, reason="this triton has no tensor descriptors")
def test_gemm_persistent_refuses_unaligned_rows():
    a, b = rand((8, 129), torch.float16, 9), rand((129, 8), torch.float16, 10)
    with pytest.raises(NotSupportedError, match="16-byte"):
        gemm_persistent(a, b)


def test_gemm_tiled_and_persistent_agree():
    if not HAS_TENSOR_DESCRIPTOR:
        pytest.skip("this triton has no tensor descriptors")
    a, b = rand((48, 64), torch.float32, 11), rand((64, 80), torch.float32, 12)
    assert rel_err(gemm(a, b), gemm_persistent(a, b)) < RTOL[torch.float32]


def test_gemm_rejects_bad_inputs_with_expected_and_got():
    a = rand((4, 8), torch.float16, 0)
    with pytest.raises(ShapeError, match=r"b must have shape \[K, N\] = \[8, \*\], got \[7, 5\]"):
        gemm(a, rand((7, 5), torch.float16, 0))
    with pytest.raises(ShapeError, match="dtype"):
        gemm(a, rand((8, 5), torch.float32, 0))
    with pytest.raises(ShapeError, match="2 dimensions"):
        gemm(a.unsqueeze(0), rand((8, 5), torch.float16, 0))
    with pytest.raises(ShapeError, match=r"out must have shape \[4, 5\]"):
        gemm(a, rand((8, 5), torch.float16, 0), out=torch.empty(5, 4, dtype=torch.float16))
    with pytest.raises(ShapeError, match="scale"):
        gemm(a, rand((8, 5), torch.float16, 0), torch.tensor([1.0]), None)
    assert issubclass(ShapeError, ValueError)


def test_gemm_counts():
    assert gemm_flops(4096, 4096, 4096) == 2 * 4096**3
    assert gemm_flops(16, 4096, 4096) == 2 * 16 * 4096 * 4096
    assert gemm_min_bytes(3, 5, 7, torch.bfloat16) == 2 * (3 * 7 + 7 * 5 + 3 * 5)
    assert gemm_min_bytes(3, 5, 7, torch.float32) == 4 * (3 * 7 + 7 * 5 + 3 * 5)
    if hasattr(torch, "float8_e4m3fn"):
        # fp8 inputs, bf16 output, two float32 scales
        assert gemm_min_bytes(3, 5, 7, torch.float8_e4m3fn) == (3 * 7 + 7 * 5) + 2 * 3 * 5 + 8


def test_gemm_registry_parse_and_variants():
    op = get_op("gemm")
    assert op.parse_shape("4096x4096x4096") == GemmShape(4096, 4096, 4096)
    assert op.parse_shape("m=16,n=4096,k=4096") == GemmShape(16, 4096, 4096)
    assert op.parse_shape(op.default_shape) == GemmShape(4096, 4096, 4096)
    for bad in ("4096x4096", "0x1x1", "m=1,n=2", "axbxc", "", "m=1,n=2,k=3,z=4"):
        with pytest.raises(ShapeError):
            op.parse_shape(bad)
    assert {"triton", "cublas"} <= set(op.variants)
    shape = op.parse_shape("33x20x48")
    assert op.flops(shape) == 2 * 33 * 20 * 48
    assert op.min_bytes(shape, torch.float16) == 2 * (33 * 48 + 48 * 20 + 33 * 20)
    inputs = op.make_inputs(shape, torch.float16, torch.device(DEVICE), 0)
    assert all((t != 0).any() for t in inputs)
    again = op.make_inputs(shape, torch.float16, torch.device(DEVICE), 0)
    assert all(torch.equal(x, y) for x, y in zip(inputs, again)), "same seed must give the same inputs"
    ref = gemm_reference(*inputs)
    for name, fn in op.variants.items():
        try:
            c = fn(*inputs)
        except NotSupportedError:
            continue
        assert c.shape == (33, 20), name
        assert rel_err(c, ref) < RTOL[torch.float16], name


def test_fp8_inputs_are_scaled_and_k_contiguous():
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("torch without float8")
    op = get_op("gemm")
    a, b, sa, sb = op.make_inputs(GemmShape(16, 32, 64), torch.float8_e4m3fn, torch.device("cpu"), 0)
    assert a.dtype == b.dtype == torch.float8_e4m3fn and b.shape == (64, 32) and b.stride(0) == 1
    assert sa.dtype == torch.float32 and sa.numel() == 1
    # The quantization uses the full e4m3 range: the largest magnitude lands at 448.
    assert float(a.float().abs().max()) == 448.0
