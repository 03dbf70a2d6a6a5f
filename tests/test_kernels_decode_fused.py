"""CPU tests (Triton interpreter) of the fused decode-step kernels against the unfused chains they
replace: RoPE + cache writes, and residual add + RMSNorm."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernels.errors import ShapeError  # noqa: E402
from kernels.pointwise import reference as ref  # noqa: E402
from kernels.pointwise import triton_decode_fused as fused  # noqa: E402

# fp32: same operations and order per element as the references (exact but for the sum's tree);
# fp16: one output rounding apart at most.
TOL = {torch.float32: 1e-6, torch.float16: 2e-3}


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("hq,hkv", [(4, 2), (3, 1), (8, 8)])
def test_rope_qkv_to_cache_equals_rope_then_index_copy(dtype, hq, hkv):
    B, L, Dh, pos = 3, 11, 16, 6
    g = torch.Generator().manual_seed(hq * 10 + hkv)
    qkv = torch.randn(B, 1, (hq + 2 * hkv) * Dh, generator=g).to(dtype)
    ang = torch.outer(torch.arange(L, dtype=torch.float32), torch.rand(Dh // 2, generator=g))
    cos, sin = ang.cos(), ang.sin()
    kc = torch.randn(B, hkv, L, Dh, generator=g).to(dtype)
    vc = torch.randn(B, hkv, L, Dh, generator=g).to(dtype)
    kc_ref, vc_ref = kc.clone(), vc.clone()
    p = torch.tensor([pos])
    q = fused.rope_qkv_to_cache(qkv, cos, sin, p, kc, vc)

    # The unfused chain, as the model's eager path runs it.
    qr, kr, vr = qkv.split([hq * Dh, hkv * Dh, hkv * Dh], dim=-1)
    q_ref = ref.apply_rope(qr.reshape(B, 1, hq, Dh), cos[pos:pos + 1], sin[pos:pos + 1])[:, 0]
    k_ref = ref.apply_rope(kr.reshape(B, 1, hkv, Dh), cos[pos:pos + 1], sin[pos:pos + 1])
    kc_ref.index_copy_(2, p, k_ref.transpose(1, 2))
    vc_ref.index_copy_(2, p, vr.reshape(B, 1, hkv, Dh).transpose(1, 2))
    assert q.shape == (B, hq, Dh) and q.is_contiguous()
    assert rel(q, q_ref) < TOL[dtype]
    assert rel(kc, kc_ref) < TOL[dtype]
    assert torch.equal(vc, vc_ref)  # v is copied, not computed
    others = [i for i in range(L) if i != pos]
    assert torch.equal(kc[:, :, others], kc_ref[:, :, others])  # nothing else in the cache moved


@pytest.mark.interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("D", [96, 128])
def test_add_rms_norm_equals_add_then_rms_norm(dtype, D):
    g = torch.Generator().manual_seed(D)
    x = torch.randn(2, 3, D, generator=g).to(dtype)
    r = torch.randn(2, 3, D + 4, generator=g).to(dtype)[..., :D]  # a strided residual
    w = (1 + 0.1 * torch.randn(D, generator=g)).to(dtype)
    s, h = fused.add_rms_norm(x, r, w, 1e-5)
    assert torch.equal(s, x + r)
    assert rel(h, ref.rms_norm(x + r, w, 1e-5)) < TOL[dtype] * 10  # fp32: the mean's tree sum, ~1e-7


@pytest.mark.interpreter
def test_fused_decode_kernels_refuse_bad_inputs():
    kc = torch.zeros(2, 2, 8, 16)
    cos = sin = torch.zeros(8, 8)
    p = torch.tensor([1])
    with pytest.raises(ShapeError, match="one token per sequence"):
        fused.rope_qkv_to_cache(torch.zeros(2, 3, 128), cos, sin, p, kc, kc.clone())
    with pytest.raises(ShapeError, match="q_heads"):
        fused.rope_qkv_to_cache(torch.zeros(2, 1, 60), cos, sin, p, kc, kc.clone())
    with pytest.raises(ShapeError, match="pos"):
        fused.rope_qkv_to_cache(torch.zeros(2, 1, 128), cos, sin, torch.tensor([1], dtype=torch.int32), kc, kc.clone())
    with pytest.raises(ShapeError, match="r must have"):
        fused.add_rms_norm(torch.zeros(2, 8), torch.zeros(2, 4), torch.ones(8), 1e-5)


@pytest.mark.gpu
def test_fused_decode_step_equals_the_unfused_one_on_the_gpu():
    """The tiny config (4/2 heads) in bf16 on the GPU, a step replayed from a CUDA graph: the fused
    Triton step against the same model with fusion switched off (same weights, same cache)."""
    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.model import Llama

    cfg = get_config("tiny")
    m = Llama(cfg, batch=4, max_len=64, device="cuda", seed=1)
    tokens = torch.randint(0, cfg.vocab_size, (4, 20), device="cuda")
    m.prefill(tokens)
    pos, lengths = torch.tensor([20], device="cuda"), torch.full((4,), 21, dtype=torch.int32, device="cuda")
    k0, v0 = [k.clone() for k in m.k_cache], [v.clone() for v in m.v_cache]
    fused_logits = m.decode_step(tokens[:, -1], pos, lengths)
    k1, v1 = [k.clone() for k in m.k_cache], [v.clone() for v in m.v_cache]
    m.k_cache[:], m.v_cache[:] = k0, v0
    m._fused_decode = False
    plain = m.decode_step(tokens[:, -1], pos, lengths)
    # bf16: the two paths round the same values in the same places; what differs is the fp32 sum
    # order of the norms, which can flip a bf16 rounding (u = 2^-8) and carries through the layers.
    assert rel(fused_logits, plain) < 2e-2
    for a, b in zip(k1 + v1, m.k_cache + m.v_cache):
        assert rel(a, b) < 1e-2
    m._fused_decode = True
    out = torch.empty_like(plain)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out.copy_(m.decode_step(tokens[:, -1], pos, lengths))
    g.replay()
    torch.cuda.synchronize()
    assert rel(out, fused_logits) < 2e-2
