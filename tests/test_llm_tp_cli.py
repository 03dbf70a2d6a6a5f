"""`kernelprof llm --tp`: clear errors before any process starts; `kernelprof report` on a TP run file."""
from __future__ import annotations

import pytest

from kernelprof.cli.main import main
from kernelprof.methods.llm.tp_ranks import RankPhase, RankRecord, TPResult, merge_ranks
from kernelprof.methods.llm.tp_run import NCCL_ENV, check_launch, merged_trace, write_outputs
from kernelprof.outputs.runfile import load_run


def test_indivisible_tp_is_refused(capsys):
    assert main(["llm", "--model", "tiny", "--tp", "4"]) != 0
    assert "n_kv_heads=2 not divisible by 4" in capsys.readouterr().err


def test_tp_beyond_visible_gpus_is_refused():
    from kernelprof.errors import UsageError

    with pytest.raises(UsageError, match="--tp 4 needs 4 GPUs on this host; 2 are visible"):
        check_launch(4, 2)
    check_launch(2, 2)
    assert NCCL_ENV == {"NCCL_NVLS_ENABLE": "0"}


def _result() -> tuple[TPResult, list]:
    # Not a measurement: fixed numbers to check the file round trip and the report's rows.
    recs = [RankRecord(r, 2, "node", r, f"GPU-{r}abcdef-0000", "NVIDIA H200", 0,
                       (RankPhase("prefill", 0.2, 30.0 + r, 150.0, 1_000, {"communication": 0.02, "gemm": 0.18}),
                        RankPhase("decode", 1.0, 100.0 + r, 100.0, 2_000, None)), 131.0 + r, None) for r in range(2)]
    phases, notes = merge_ranks(recs, requests=2)
    traces = [(1_000 + r, {"traceEvents": [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "x"}},
                                           {"ph": "X", "pid": 1, "tid": 1, "name": "prefill", "ts": 5.0, "dur": 1.0}],
                           "otherData": {}}) for r in range(2)]
    return TPResult("llama-3.1-8b", "optimized", 2, 8, 512, 128, 2, tuple(recs), phases, 0.6, 130.5, notes), traces


def test_tp_run_file_loads_back_and_reports_per_gpu(tmp_path, capsys):
    r, traces = _result()
    run_path, trace_path = write_outputs(str(tmp_path / "run-tp2"), r, traces)
    loaded = load_run(run_path, kind="llm-tp")
    assert loaded.version >= 1 and TPResult.from_json(loaded.payload["result"]) == r
    assert main(["report", str(run_path)]) == 0
    out = capsys.readouterr().out
    assert "TP 2" in out and "GPU-0abcdef" in out and "GPU-1abcdef" in out
    assert "61.0 J" in out or "61 J" in out  # prefill total over both GPUs


def test_merged_trace_has_a_process_per_rank():
    _, traces = _result()
    doc = merged_trace(traces)
    names = [e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "process_name"]
    assert names == ["rank 0: x", "rank 1: x"]
    pids = {e["pid"] for e in doc["traceEvents"]}
    assert len(pids) == 2
    ts = [e["ts"] for e in doc["traceEvents"] if e.get("ph") == "X"]
    assert ts == [5.0, 6.0]  # rank 1's trace started 1 us later on the shared clock
