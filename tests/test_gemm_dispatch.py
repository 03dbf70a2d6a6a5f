"""The GEMM dispatcher (kernels/gemm/dispatch.py) and the split-K path (kernels/gemm/triton_splitk.py):
rule choices at the 8B decode shapes, the tuned table's loader and fallbacks, and split-K results
under the interpreter against a float64 reference."""
from __future__ import annotations

import json

import pytest

from kernels.gemm.dispatch import (
    MAX_SPLIT_K,
    MIN_K_PER_SPLIT,
    GemmConfig,
    choose_gemm_config,
    k_per_split,
    load_table,
    rule_config,
    shape_bucket,
)

# The 8B model's weights as the Llama model multiplies them: x [M, K] @ w [K, N]
# (kernelprof/methods/llm/model.py: wqkv [4096, 6144], wo [4096, 4096], w13 [4096, 28672], w2 [14336, 4096]).
WEIGHTS_KN = [(4096, 6144), (4096, 4096), (4096, 28672), (14336, 4096)]


@pytest.mark.parametrize("num_sms", [132, 114, 4])
@pytest.mark.parametrize("k,n", WEIGHTS_KN)
def test_rule_fills_the_sms_with_deep_enough_chunks(k, n, num_sms):
    for m in (1, 7, 16, 17, 32, 33, 64):
        cfg = rule_config(m, n, k, 2, num_sms)
        assert cfg.problems() == []
        assert cfg.block_m >= min(m, 64) and cfg.block_m >= 16  # tl.dot's minimum rows
        depth, splits = k_per_split(k, cfg.split_k, cfg.block_k)
        assert splits == cfg.split_k and depth % cfg.block_k == 0 and depth * splits >= k
        assert 1 <= cfg.split_k <= MAX_SPLIT_K
        if cfg.split_k > 1:
            assert depth >= MIN_K_PER_SPLIT
        tiles = -(-m // cfg.block_m) * -(-n // cfg.block_n)
        if tiles * cfg.split_k < num_sms:  # short of a program per SM only where K ran out of chunks
            assert cfg.split_k == MAX_SPLIT_K or k_per_split(k, cfg.split_k + 1, cfg.block_k)[0] < MIN_K_PER_SPLIT
    assert rule_config(65, n, k, 2, num_sms) is None  # big M: the autotuner's tiles


def test_rule_at_the_h200_decode_shapes():
    # 96 tiles for N=6144 -> 2 splits; 64 tiles for N=4096 -> 3; N=28672 has 448 tiles: no split.
    assert [rule_config(16, n, k, 2, 132).split_k for k, n in WEIGHTS_KN] == [2, 3, 1, 3]
    assert rule_config(1, 4096, 4096, 4, 132).block_k == 64  # fp32 stages stay the same size


def test_table_hit_miss_and_corrupt(tmp_path):
    bucket = shape_bucket(16, 4096, 14336, "bfloat16")
    assert bucket == "m16-n4096-k14336-bfloat16" and shape_bucket(3, 1, 1, "float16") == "m8-n1-k1-float16"
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"version": 1, "gpus": {"NVIDIA H200": {"entries": {
        bucket: {"block_m": 16, "block_n": 32, "block_k": 256, "num_warps": 4, "num_stages": 3, "split_k": 4},
        "m16-n4096-k4096-bfloat16": {"block_m": 12}}}}}))
    table = load_table(path)
    assert "skipped 1 invalid entries" in table.note
    hit = choose_gemm_config(9, 4096, 14336, "bfloat16", 132, gpu_name="NVIDIA H200", table=table)
    assert (hit.block_n, hit.block_k, hit.split_k, hit.source) == (32, 256, 4, "table")
    miss = choose_gemm_config(9, 4096, 14336, "bfloat16", 132, gpu_name="other GPU", table=table)
    assert miss.source == "rule" and miss.split_k == rule_config(9, 4096, 14336, 2, 132).split_k
    assert choose_gemm_config(4096, 4096, 4096, "bfloat16", 132, gpu_name="NVIDIA H200", table=table) is None
    for text in ("{oops", '{"version": 2}'):
        path.write_text(text)
        broken = load_table(path)
        cfg = choose_gemm_config(16, 4096, 4096, "bfloat16", 132, gpu_name="NVIDIA H200", table=broken)
        assert broken.entries == {} and cfg.source == "rule" and "using the rule" in cfg.note
    absent = load_table(tmp_path / "none.json")
    assert "no tuned table" in absent.note


def test_shipped_table_parses():
    assert "unreadable" not in load_table().note and "version" not in load_table().note


torch = pytest.importorskip("torch")
pytest.importorskip("triton")

# fp16: C rounded to fp16 (u = 4.9e-4, ~2.8e-4 in norm); the partials stay fp32 and are summed
# once more in fp32 (~splits x 6e-8, negligible). 1e-3 is 2u, as tests/test_kernels_gemm.py.
# fp32: exact fp32 dots in the interpreter; accumulation ~sqrt(K) x 6e-8 < 2e-6 at K <= 700. 1e-5.
RTOL = {torch.float16: 1e-3, torch.float32: 1e-5}


def _rand(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(dtype)


@pytest.mark.interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("m,n,k,cfg", [
    (1, 40, 700, GemmConfig(block_m=16, block_n=32, block_k=64, split_k=3)),     # K tail in the last chunk
    (5, 64, 512, GemmConfig(block_m=16, block_n=64, block_k=128, split_k=4)),    # even K, 4 x 128
    (33, 48, 300, GemmConfig(block_m=32, block_n=16, block_k=32, split_k=7, group_m=2)),  # M past one tile
    (17, 24, 96, GemmConfig(block_m=16, block_n=32, block_k=64, split_k=1)),     # no split: C directly
])
def test_split_k_matches_float64_reference(m, n, k, cfg, dtype):
    from kernels.gemm import gemm, gemm_reference

    a, b = _rand((m, k), dtype, 1), _rand((k, n), dtype, 2)
    out = torch.full((m, n), float("nan"), dtype=dtype)
    c = gemm(a, b, out=out, config=cfg)
    assert c is out and not torch.isnan(c).any()
    ref = gemm_reference(a, b)
    assert float((c.double() - ref).norm() / ref.norm()) < RTOL[dtype]


@pytest.mark.interpreter
def test_split_k_is_deterministic_and_takes_scales_and_strides():
    from kernels.gemm import gemm, gemm_reference

    a = _rand((3, 256), torch.float32, 3)
    b_nk = _rand((24, 256), torch.float32, 4)  # b = b_nk.T: K-contiguous, as a transposed weight
    cfg = GemmConfig(block_m=16, block_n=16, block_k=32, split_k=5)
    s_a, s_b = torch.tensor([0.5]), torch.tensor([3.0])
    c1 = gemm(a, b_nk.T, s_a, s_b, config=cfg)
    c2 = gemm(a, b_nk.T, s_a, s_b, config=cfg)
    assert torch.equal(c1, c2)  # a fixed summation order, no atomics
    ref = gemm_reference(a, b_nk.T) * 1.5
    assert float((c1.double() - ref).norm() / ref.norm()) < RTOL[torch.float32]


@pytest.mark.interpreter
def test_dispatched_default_at_a_decode_like_shape_is_correct():
    from kernels.gemm import gemm, gemm_reference
    from kernels.gemm.triton_gemm import _dispatch

    a, b = _rand((4, 1024), torch.float16, 5), _rand((1024, 64), torch.float16, 6)
    cfg = _dispatch(4, 64, 1024, torch.float16, a.device)
    assert isinstance(cfg, GemmConfig) and cfg.split_k > 1  # 1 tile on 4 "SMs": split
    ref = gemm_reference(a, b)
    assert float((gemm(a, b).double() - ref).norm() / ref.norm()) < RTOL[torch.float16]


def test_bad_gemm_config_is_refused():
    from kernels.errors import ShapeError
    from kernels.gemm import gemm

    a, b = torch.zeros(2, 32), torch.zeros(32, 32)
    with pytest.raises(ShapeError, match="block_m must be one of"):
        gemm(a, b, config=GemmConfig(block_m=8))
    with pytest.raises(ShapeError, match="config must be"):
        gemm(a, b, config="fast")
