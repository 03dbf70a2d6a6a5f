"""The roofline floor of a generation batch (kernelprof.methods.llm.floor), on CPU."""
import pytest

from kernelprof.methods.llm.config import get_config
from kernelprof.methods.llm.floor import MeasuredRates, roofline_floor

H100ISH = MeasuredRates(copy_bytes_per_s=3.0e12, matmul_flop_s=700e12)


def test_8b_batch1_decode_is_weight_bytes_over_bandwidth():
    """Batch 1 decode reads ~15 GB of bf16 weights a step and does ~15 GFLOP: bytes-bound, so 127 steps
    take ~127 x 15.0e9 / 3e12 = 0.64 s; prefill of 512 tokens (7.6 TFLOP) is FLOP-bound (~11 ms)."""
    cfg = get_config("llama-3.1-8b")
    f = roofline_floor(cfg, 1, 512, 128, H100ISH)
    weights = (cfg.params() - cfg.vocab_size * cfg.dim) * 2
    assert 14.9e9 < weights < 15.1e9  # Llama-3.1-8B without its embedding table: 7.5 G parameters
    assert f.decode_steps == 127 and f.decode_bytes_bound_steps == 127
    assert f.decode_s == pytest.approx(127 * weights / 3.0e12, rel=0.02)  # the KV cache adds ~1%
    assert f.prefill_bound == "flops" and 0.009 < f.prefill_s < 0.013
    assert f.total_s == pytest.approx(f.prefill_s + f.decode_s)


def test_floor_follows_the_slower_side_per_step():
    """At batch 512 a decode step's linear FLOPs (512 x 15 GFLOP = 7.7 TFLOP, 11 ms) outweigh its bytes
    (weights 15 GB + 8.7 GB of cache at ~130 positions, 7.9 ms): those steps are FLOP-bound."""
    cfg = get_config("llama-3.1-8b")
    big = roofline_floor(cfg, 512, 128, 4, H100ISH)
    assert big.decode_bytes_bound_steps == 0
    faster_mm = roofline_floor(cfg, 512, 128, 4, MeasuredRates(3.0e12, 1400e12))
    assert faster_mm.decode_s < big.decode_s
    # batch 1 is bytes-bound: a faster matmul leaves its decode floor alone
    one = roofline_floor(cfg, 1, 512, 128, H100ISH)
    assert roofline_floor(cfg, 1, 512, 128, MeasuredRates(3.0e12, 1400e12)).decode_s == one.decode_s


def test_floor_rejects_impossible_input():
    cfg = get_config("tiny")
    with pytest.raises(ValueError, match="must be >= 1"):
        roofline_floor(cfg, 0, 8, 8, H100ISH)
    with pytest.raises(ValueError, match="positive"):
        roofline_floor(cfg, 1, 8, 8, MeasuredRates(0.0, 1e12))
    assert roofline_floor(cfg, 1, 8, 1, H100ISH).decode_s == 0.0  # one output token: prefill only


def test_report_of_an_llm_run_prints_its_floor_line(tmp_path):
    """A saved `kernelprof llm` run with the floor (written since 2026-12-07): the report reprints it.
    The run is a shipped real recording; the floor fields are added here by hand (rates assumed)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from kernelprof.methods.llm.config import get_config

    src = Path(__file__).resolve().parent.parent / "traces" / "llm-llama-3.1-8b-b8-optimized.json"
    doc = json.loads(src.read_text())
    floor = roofline_floor(get_config("llama-3.1-8b"), 8, 512, 128, H100ISH)
    doc["payload"].update(roofline_floor=floor.to_json(), time_per_batch_s=1.5 * floor.total_s)
    path = tmp_path / "llm.json"
    path.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "kernelprof", "report", str(path)], capture_output=True, text=True,
                       timeout=120, env={**__import__("os").environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "1.500x the roofline floor" in r.stdout and "3.00 TB/s" in r.stdout
