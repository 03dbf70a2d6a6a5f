"""The decode dispatcher (kernels/decode/dispatch.py): the SM-count rule's choices, the tuned
table's loader and its fallbacks, and decode under the interpreter with the configs it chooses."""
from __future__ import annotations

import json

import pytest

from kernels.decode.dispatch import (
    MIN_CHUNK_TOKENS,
    DecodeConfig,
    choose_decode_config,
    chunk_tokens,
    load_table,
    parse_table,
    rule_config,
    shape_bucket,
)

GRID = [(b, hq, hkv, n) for b in (1, 4, 16, 64) for hq, hkv in ((32, 8), (64, 8), (32, 32))
        for n in (1024, 8192, 32768, 131072)]


@pytest.mark.parametrize("num_sms", [132, 114, 78, 4])
def test_rule_choices_are_launchable_and_keep_chunks_long(num_sms):
    for b, hq, hkv, n in GRID:
        cfg = rule_config(b, hq, hkv, n, 128, num_sms)
        assert cfg.problems() == [], (b, hq, hkv, n)
        chunk, splits = chunk_tokens(n, cfg.num_splits, cfg.block_n)
        assert splits == cfg.num_splits  # already rounded to whole chunks
        assert chunk % cfg.block_n == 0 and chunk * splits >= n > chunk * (splits - 1)
        if splits > 1:
            assert chunk >= MIN_CHUNK_TOKENS, (b, hq, hkv, n, cfg)
        assert cfg.block_g >= hq // hkv


def test_rule_splits_where_one_wave_is_not_filled():
    # B1 ctx 32k, 8 KV heads on an H200: 8 programs unsplit; the rule fills the 132 SMs once.
    one = rule_config(1, 32, 8, 32768, 128, 132)
    assert one.num_splits == 16 and 1 * 8 * one.num_splits <= 132
    # 16 x 8 = 128 programs already fill a wave: splitting would only add partials to merge.
    assert rule_config(16, 32, 8, 8192, 128, 132).num_splits == 1
    assert rule_config(64, 32, 8, 1024, 128, 132).num_splits == 1
    # 136 programs are two waves of which the second is nearly empty: split to even them out.
    assert rule_config(17, 32, 8, 8192, 128, 132).num_splits > 1
    # a cache shorter than two minimum chunks is never split
    assert rule_config(1, 32, 8, 2 * MIN_CHUNK_TOKENS - 1, 128, 132).num_splits == 1


def test_shape_bucket_rounds_batch_and_length_in_log2():
    assert shape_bucket(16, 32, 8, 8192, 128) == "hq32-hkv8-d128-b16-ctx8192"
    assert shape_bucket(15, 32, 8, 8000, 128) == shape_bucket(16, 32, 8, 8192, 128)
    assert shape_bucket(1, 32, 8, 1000, 128).endswith("b1-ctx1024")
    assert shape_bucket(3, 32, 8, 640, 128) != shape_bucket(4, 32, 8, 1024, 128)


def _table(tmp_path, entries, gpu="NVIDIA H200", version=1):
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps({"version": version, "gpus": {gpu: {"entries": entries}}}))
    return path


def test_table_entry_is_used_for_its_gpu_and_bucket(tmp_path):
    bucket = shape_bucket(1, 32, 8, 32768, 128)
    path = _table(tmp_path, {bucket: {"num_splits": 64, "block_n": 64, "num_warps": 8, "num_stages": 4,
                                      "block_g": 16, "tb_s": 3.1}})
    table = load_table(path)
    assert table.note == ""
    cfg = choose_decode_config(1, 32, 8, 32768, 128, 132, gpu_name="NVIDIA H200", table=table)
    assert (cfg.num_splits, cfg.block_n, cfg.num_warps, cfg.num_stages, cfg.source) == (64, 64, 8, 4, "table")
    # a length in the same bucket re-rounds the split count to whole chunks
    near = choose_decode_config(1, 32, 8, 30000, 128, 132, gpu_name="NVIDIA H200", table=table)
    assert near.source == "table" and near.num_splits == chunk_tokens(30000, 64, 64)[1]
    # another GPU, or a bucket the table lacks: the rule, saying why
    other = choose_decode_config(1, 32, 8, 32768, 128, 132, gpu_name="NVIDIA H100 80GB HBM3", table=table)
    assert other.source == "rule" and "no tuned entry for 'NVIDIA H100 80GB HBM3'" in other.note
    assert other == rule_config(1, 32, 8, 32768, 128, 132, note=other.note)
    miss = choose_decode_config(4, 32, 8, 32768, 128, 132, gpu_name="NVIDIA H200", table=table)
    assert miss.source == "rule" and "b4-ctx32768" in miss.note


def test_missing_table_falls_back_to_the_rule_with_a_note(tmp_path):
    table = load_table(tmp_path / "absent.json")
    assert table.entries == {} and "no tuned table at" in table.note
    cfg = choose_decode_config(1, 32, 8, 32768, 128, 132, gpu_name="NVIDIA H200", table=table)
    assert cfg.source == "rule" and "no tuned table at" in cfg.note
    assert cfg.num_splits == rule_config(1, 32, 8, 32768, 128, 132).num_splits


@pytest.mark.parametrize("text,why", [
    ("{not json", "not valid JSON"),
    ('{"version": 99, "gpus": {}}', "not a version-1 table"),
    ('[1, 2, 3]', "not a version-1 table"),
])
def test_corrupt_table_falls_back_to_the_rule_with_a_note(tmp_path, text, why):
    path = tmp_path / "tuned.json"
    path.write_text(text)
    table = load_table(path)
    assert table.entries == {} and why in table.note
    cfg = choose_decode_config(16, 32, 8, 8192, 128, 132, gpu_name="NVIDIA H200", table=table)
    assert cfg.source == "rule" and why in cfg.note


def test_invalid_entries_are_skipped_and_named(tmp_path):
    good = shape_bucket(1, 32, 8, 8192, 128)
    path = _table(tmp_path, {
        good: {"num_splits": 8, "block_n": 128, "num_warps": 4, "num_stages": 3, "block_g": 16},
        "hq32-hkv8-d128-b4-ctx8192": {"num_splits": 0, "block_n": 128},
        "hq32-hkv8-d128-b16-ctx8192": {"num_splits": 2, "block_n": 96},
        "hq32-hkv8-d128-b64-ctx8192": {"num_splits": "many"},
    })
    table = load_table(path)
    assert set(table.entries["NVIDIA H200"]) == {good}
    assert "skipped 3 invalid entries" in table.note
    assert choose_decode_config(1, 32, 8, 8192, 128, 132, gpu_name="NVIDIA H200", table=table).source == "table"


def test_config_round_trips_through_json():
    cfg = DecodeConfig(num_splits=12, block_n=64, num_warps=8, num_stages=2, block_g=32, source="table")
    assert DecodeConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    assert parse_table({"version": 1, "gpus": {"G": {"entries": {"k": cfg.to_json()}}}}, "x").entries["G"]["k"] \
        .num_splits == 12


def test_shipped_table_parses():
    # The file benchmarks/decode_tune.py writes; absent before the first tuning run (then the note says so).
    table = load_table()
    assert "not valid JSON" not in table.note and "version" not in table.note and "invalid" not in table.note


def test_rejects_impossible_shapes():
    with pytest.raises(ValueError, match="q_heads a multiple of kv_heads"):
        choose_decode_config(1, 30, 8, 1024, 128, 132)


# ---------------------------------------------------------------------- decode with the chosen configs
torch = pytest.importorskip("torch")
pytest.importorskip("triton")


def _case(b, hq, hkv, max_len, d, lengths, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(s, generator=g).to(dtype) for s in ((b, hq, d), (b, hkv, max_len, d), (b, hkv, max_len, d)))
    for i, n in enumerate(lengths):  # never read past a length: NaN there would poison the output
        k[i, :, n:] = float("nan")
        v[i, :, n:] = float("nan")
    return q, k, v, torch.tensor(lengths, dtype=torch.int32)


# fp16: output rounded to fp16 and P rounded before P V (2e-3 = 4u, as tests/test_kernels_decode.py);
# fp32: exact fp32 dots in the interpreter, 1e-5 is 100x the observed ~1e-7.
RTOL = {torch.float16: 2e-3, torch.float32: 1e-5}


@pytest.mark.interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_decode_is_correct_with_the_rule_configs(dtype):
    from kernels.decode import decode_attention, decode_eager
    from kernels.decode.triton_decode import resolve_decode_config

    # Small shapes whose rule config (at 132 SMs, as on the GPU) splits: 600 tokens -> 2 chunks of
    # 384 (BLOCK_N 128), the second one partial; lengths that end inside a block and a chunk.
    b, hq, hkv, n, d = 2, 8, 2, 600, 64
    q, k, v, lens = _case(b, hq, hkv, n, d, [600, 300], dtype, seed=7)
    ref = decode_eager(q.double(), k.double(), v.double(), lens)
    for cfg in (rule_config(b, hq, hkv, n, d, 132), rule_config(b, hq, hkv, n, d, 4),
                DecodeConfig(num_splits=5, block_n=64, num_warps=8, num_stages=4, block_g=16),
                DecodeConfig(num_splits=1, block_n=32, num_warps=4, num_stages=2, block_g=32)):
        used, chunk = resolve_decode_config(b, hq, hkv, n, d, q.device, config=cfg)
        assert chunk % used.block_n == 0 and chunk * used.num_splits >= n
        o = decode_attention(q, k, v, lens, config=cfg)
        assert not torch.isnan(o).any(), cfg
        err = float((o.double() - ref).norm() / ref.norm())
        assert err < RTOL[dtype], (cfg, err)


@pytest.mark.interpreter
def test_merge_handles_more_splits_than_one_step():
    # 40 chunks of 16 tokens: the merge sums SPLIT_STEP=16 partials at a time, three steps, the
    # last partly masked; sequence 1 leaves 30 chunks empty (weight 0).
    from kernels.decode import decode_attention, decode_eager

    q, k, v, lens = _case(2, 4, 1, 640, 32, [640, 150], torch.float32, seed=8)
    o = decode_attention(q, k, v, lens, config=DecodeConfig(num_splits=40, block_n=16))
    ref = decode_eager(q.double(), k.double(), v.double(), lens)
    assert float((o.double() - ref).norm() / ref.norm()) < RTOL[torch.float32]


def test_bad_config_is_refused():
    from kernels.decode import decode_attention
    from kernels.errors import ShapeError

    q, k, v, lens = _case(1, 8, 1, 32, 32, [32], torch.float32, seed=0)
    with pytest.raises(ShapeError, match="block_n must be one of"):
        decode_attention(q, k, v, lens, config=DecodeConfig(num_splits=2, block_n=48))
    with pytest.raises(ShapeError, match="smaller than the GQA group"):
        decode_attention(torch.zeros(1, 32, 32), k, v, lens, config=DecodeConfig(num_splits=2, block_g=16))


@pytest.mark.interpreter
@pytest.mark.parametrize("b,hq,hkv,n,lengths,splits", [
    (2, 8, 2, 600, [600, 300], 5),      # GQA 4: one S_STEP tile of 16 splits holds every chunk
    (2, 4, 4, 640, [640, 150], 40),     # group 1 (S_STEP 64); sequence 1 leaves 30 chunks empty
    (1, 16, 2, 640, [610], 40),         # group 8: S_STEP 8, five steps, the last ones partly masked
])
def test_fused_merge_matches_the_reference_and_leaves_its_tickets_at_zero(b, hq, hkv, n, lengths, splits):
    from kernels.decode import decode_attention, decode_eager
    from kernels.decode import triton_decode

    q, k, v, lens = _case(b, hq, hkv, n, 32, lengths, torch.float32, seed=9)
    ref = decode_eager(q.double(), k.double(), v.double(), lens)
    cfg = DecodeConfig(num_splits=splits, block_n=16, merge="fused")
    first = decode_attention(q, k, v, lens, config=cfg)
    again = decode_attention(q, k, v, lens, config=cfg)  # the same tickets, reset by the first call
    two_kernel = decode_attention(q, k, v, lens, config=DecodeConfig(num_splits=splits, block_n=16))
    for o in (first, again):
        assert float((o.double() - ref).norm() / ref.norm()) < RTOL[torch.float32]
    assert torch.equal(first, again)
    assert float((first - two_kernel).abs().max()) < 1e-6  # same math, a different summation tree
    assert all(int(t.abs().sum()) == 0 for t in triton_decode._TICKETS.values())


def test_merge_kind_is_checked_and_old_tables_mean_the_two_kernel_merge():
    assert DecodeConfig(num_splits=2, merge="atomic").problems() == [
        "merge must be one of ('kernel', 'fused'), got 'atomic'"]
    old = DecodeConfig.from_json({"num_splits": 4, "block_n": 64})
    assert old.merge == "kernel"
    assert DecodeConfig.from_json(DecodeConfig(num_splits=4, merge="fused").to_json()).merge == "fused"


@pytest.mark.gpu
def test_fused_merge_on_the_gpu_direct_and_replayed_from_a_graph():
    """The ticket's ordering (partials visible before the last program reads them) only matters with
    programs running at once: the interpreter runs them one by one. bf16, 16 splits of B1 ctx 8k."""
    from kernels.decode import decode_attention, decode_eager

    torch.manual_seed(3)
    q = torch.randn(2, 32, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(2, 8, 8192, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    lens = torch.tensor([8192, 5000], dtype=torch.int32, device="cuda")
    ref = decode_eager(q.float(), k.float(), v.float(), lens)
    cfg = DecodeConfig(num_splits=16, block_n=128, merge="fused")
    outs = [decode_attention(q, k, v, lens, config=cfg) for _ in range(20)]
    out = torch.empty_like(q)
    g = torch.cuda.CUDAGraph()
    decode_attention(q, k, v, lens, config=cfg, out=out)
    with torch.cuda.graph(g):
        decode_attention(q, k, v, lens, config=cfg, out=out)
    for _ in range(20):
        g.replay()
        outs.append(out.clone())
    torch.cuda.synchronize()
    for o in outs:
        # bf16 output (u = 2^-8) and P rounded to bf16 before P V: 4u, as benchmarks/decode_points.py.
        assert float((o.float() - ref).norm() / ref.norm()) < 4 * 2.0 ** -8
        assert torch.equal(o, outs[0])  # a fixed merge order: the same bits whichever program is last
