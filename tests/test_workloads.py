"""Binning of the paper's workloads, the shipped Azure traces, the fitted BurstGPT-like workload, CSVs."""
from __future__ import annotations

import numpy as np
import pytest

from kernelprof.errors import UsageError
from kernelprof.methods.workloads import (INPUT_BINS, OUTPUT_BINS, Workload, azure, bin_of, bin_workload,
                                  burstgpt_fitted, load_csv, load_workload, workload_energy_j)


def test_bin_is_smallest_at_or_above():
    assert bin_of(1, INPUT_BINS) == 32
    assert bin_of(32, INPUT_BINS) == 32
    assert bin_of(33, INPUT_BINS) == 128
    assert bin_of(8192, INPUT_BINS) == 8192
    assert bin_of(8193, INPUT_BINS) is None
    assert bin_of(513, OUTPUT_BINS) is None


def test_binning_counts_and_drops():
    w = Workload("t", np.array([10, 100, 100, 9000, 200]), np.array([5, 9, 9, 5, 600]), "test")
    b = bin_workload(w)
    assert b.dropped == 2 and b.total == 5
    assert [(x.input_bin, x.output_bin, x.requests) for x in b.bins] == [(32, 8, 1), (128, 16, 2)]
    assert "dropped" in b.notes[0]


def test_workload_energy_sums_fractional_batches_and_lists_missing():
    w = Workload("t", np.array([10, 100, 100]), np.array([5, 9, 9]), "test")
    b = bin_workload(w)
    total, missing = workload_energy_j(b, {(128, 16): 40.0}, batch_size=8)
    assert total == pytest.approx(2 / 8 * 40.0)
    assert missing == ["32/8"]


def test_azure_traces_ship_with_their_published_sizes():
    code, conv = azure("azure-code"), azure("azure-conv")
    assert code.requests == 8819 and conv.requests == 19366  # sizes in the data's README
    assert "Splitwise" in code.source
    # The README's summary: code input median 1469, conversation output median 129.
    assert np.median(code.input_lens) == pytest.approx(1469, abs=1)
    assert np.median(conv.output_lens) == pytest.approx(129, abs=1)
    b = bin_workload(conv)
    assert sum(x.requests for x in b.bins) + b.dropped == conv.requests


def test_burstgpt_fitted_is_labelled_and_matches_published_medians():
    w = burstgpt_fitted(requests=50_000, seed=1)
    assert "fitted" in w.source and "not the trace" in w.source
    assert np.median(w.input_lens) == pytest.approx(215, rel=0.03)
    assert np.percentile(w.input_lens, 99) == pytest.approx(1038, rel=0.06)
    assert np.median(w.output_lens) == pytest.approx(7, abs=1)
    assert (w.input_lens >= 1).all() and (w.output_lens >= 1).all()


def test_csv_errors(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("input_len,output_len\n10,5\n20,-1\n")
    with pytest.raises(UsageError, match="below 1"):
        load_csv(p)
    p.write_text("input_len,output_len\n10,\n")
    with pytest.raises(UsageError, match="integers"):
        load_csv(p)
    p.write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="expected columns"):
        load_csv(p)
    p.write_text("input_len,output_len\n")
    with pytest.raises(UsageError, match="no requests"):
        load_csv(p)
    with pytest.raises(UsageError, match="unknown workload"):
        load_workload("sharegpt")


def test_largest_batch_respects_memory():
    from kernelprof.methods.llm.binned import largest_batch
    from kernelprof.methods.llm.generate import GenerateShape, memory_needed_bytes
    from kernelprof.methods.llm.config import get_config

    cfg = get_config("llama-3.1-8b")
    free = 78 * 2**30
    b = largest_batch(cfg, 8192, 512, "optimized", free, cap=512)
    assert 0 < b < 512
    assert memory_needed_bytes(cfg, GenerateShape(b, 8192, 512), "optimized") <= 0.9 * free
    assert memory_needed_bytes(cfg, GenerateShape(b + 1, 8192, 512), "optimized") > 0.9 * free
    assert largest_batch(cfg, 32, 8, "optimized", free, cap=64) == 64
    assert largest_batch(cfg, 32, 8, "optimized", 10 * 2**30, cap=64) == 0  # the weights alone are 16 GB


def test_workload_cli_bins_without_gpu():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "kernelprof", "workload", "--trace", "azure-code", "--bins-only", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import json

    doc = json.loads(r.stdout)
    assert doc["total"] == 8819 and sum(b["requests"] for b in doc["bins"]) + doc["dropped"] == 8819


def test_shipped_h100_workload_totals_follow_from_its_bins():
    # The H100 run of the Azure conversation workload: the summary's total is the bins' energies
    # weighted by requests / batch, and the phase split covers all of it (phases ~= the window).
    import json
    from pathlib import Path

    from kernelprof.methods.llm.binned import bin_totals, read_bins

    root = Path(__file__).resolve().parent.parent / "traces"
    recs = list(read_bins(root / "workload-azure-conv-llama-3.1-8b.jsonl").values())
    summary = json.loads((root / "workload-azure-conv-llama-3.1-8b.json").read_text())["payload"]["summary"]
    assert len(recs) == summary["bins_measured"] == 43 and all(r["status"] == "ok" for r in recs)
    total = sum(r["requests"] / r["batch"] * r["energy_per_batch_j"] for r in recs)
    assert total == pytest.approx(summary["energy_j"], rel=1e-12)
    tot = bin_totals(recs)
    assert tot.prefill_energy_j + tot.decode_energy_j == pytest.approx(total, rel=1e-9)
    assert tot.requests == summary["requests"] - summary["dropped"]
