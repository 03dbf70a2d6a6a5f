"""The ladder's arithmetic, verdicts, resume and round trips (pure logic: run_llm and the Profiler need a
GPU, so the rung table on CPU is built from hand-made repeats, not from a tiny-model run)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from kernelprof.errors import UsageError
from kernelprof.methods.ladder import (RUNG_NAMES, Repeat, RungResult, append_rung, change_text, compare, link,
                                       read_done, select_rungs, verdict)
from kernelprof.methods.ladder_workload import (BinSaving, WorkloadLadder, bin_savings, ladder_cases,
                                                write_ladder_results)

KEY = {"model": "tiny", "batch": 8, "input_len": 512, "output_len": 128, "repeats": 3}


def rung(name: str, js: list[float], ts: list[float], batch: int = 8, **kw) -> RungResult:
    reps = tuple(Repeat(j, 0.3 * j, 0.7 * j, t, 0.2 * t, 0.8 * t, 1500.0, 1700.0) for j, t in zip(js, ts))
    return RungResult(name, "adds " + name, True, "tiny", batch, 512, 128, reps, extra={"ladder_key": KEY}, **kw)


def test_time_power_split_is_exact():
    a = rung("a", [100.0], [8.0])       # 1 s / request, 100 W
    b = rung("b", [75.6], [5.6])        # 0.7 s / request, 108 W
    ch = compare(b, a)
    assert ch.time_ratio == pytest.approx(0.7)
    assert ch.power_ratio == pytest.approx(1.08)
    assert ch.energy_ratio == pytest.approx(ch.time_ratio * ch.power_ratio, rel=1e-12)
    assert ch.text == "-30.0% time at +8.0% power: -24.4% energy"
    assert b.mean_power_w == pytest.approx(108.0)


def test_split_per_request_across_batches():
    # Doubling the batch at the same batch time halves time per request; same J/request -> power x 2.
    a = rung("a", [10.0], [4.0], batch=8)
    b = rung("b", [10.0], [4.0], batch=16)
    ch = compare(b, a)
    assert ch.time_ratio == pytest.approx(0.5) and ch.power_ratio == pytest.approx(2.0)
    assert ch.verdict == "saves only time"


def test_verdicts_with_and_without_ci():
    assert verdict(0.7, 0.6, None, None) == "saves energy"
    assert verdict(1.2, 0.6, None, None) == "wastes energy"
    assert verdict(1.005, 0.6, None, None) == "saves only time"  # within the 1% no-CI threshold
    assert verdict(1.005, 1.002, None, None) == "no significant difference"
    # A CI straddling zero is not significant even for a large point change.
    assert verdict(0.8, 0.8, (-0.5, 0.05), (-0.4, -0.1)) == "saves only time"
    assert verdict(0.8, 0.8, (-0.3, -0.1), None) == "saves energy"


def test_ci_from_repeats_decides():
    below = rung("a", [100.0, 101.0, 99.0], [8.0, 8.1, 7.9])
    noisy = rung("b", [90.0, 115.0, 80.0], [8.0, 8.0, 8.0])    # mean 95 but spread: no significance
    tight = rung("c", [95.0, 95.5, 94.5], [8.0, 8.0, 8.0])
    assert compare(noisy, below).energy_log_ci[0] < 0 < compare(noisy, below).energy_log_ci[1]
    assert compare(noisy, below).verdict == "no significant difference"
    assert compare(tight, below).verdict == "saves energy"


def test_link_skips_unsupported_and_reasons_use_measurements():
    a = rung("hf-eager", [200.0], [20.0])
    skip = RungResult("kp-fp8", "fp8", False, "tiny", 8, 512, 128, flags=("not_supported",))
    c = rung("kp-triton", [50.0], [2.0])
    out = link([a, skip, c])
    assert out[1].change is None
    assert out[2].change.below == "hf-eager"
    assert "decode: time 16->1.6 s/batch" in out[2].reason and "SM clock" in out[2].reason


def test_json_round_trip(tmp_path):
    r = link([rung("a", [100.0, 98.0], [8.0, 8.2]), rung("b", [60.0, 61.0], [4.0, 4.1])])[1]
    back = RungResult.from_json(json.loads(json.dumps(r.to_json())))
    assert back == r
    w = WorkloadLadder("azure-conv", "tiny", "kp-eager", "kp-triton", 1000.0, 300.0, 5.0, 1.5,
                       (BinSaving("512/128", 10, 4.0, 1.0),), ("n",))
    assert WorkloadLadder.from_json(json.loads(json.dumps(w.to_json()))) == w
    assert w.saving_pct == pytest.approx(70.0) and w.bins[0].saving_pct == pytest.approx(75.0)


def test_resume_reads_finished_rungs_and_ignores_torn_line(tmp_path):
    p = tmp_path / "ladder.jsonl"
    append_rung(p, rung("hf-eager", [1.0], [1.0]))
    other = RungResult("kp-eager", "x", True, "tiny", 8, 512, 128, extra={"ladder_key": {**KEY, "batch": 4}})
    append_rung(p, other)
    append_rung(p, RungResult("kp-triton", "x", False, "tiny", 8, 512, 128, flags=("failed",),
                              extra={"ladder_key": KEY}))  # failed: retried on resume
    with p.open("a") as f:
        f.write('{"name": "kp-triton", "extra": {"ladder')  # a crash mid-write
    done = read_done(p, KEY)
    assert list(done) == ["hf-eager"]  # other config, the failed rung and the torn line left out


def test_select_rungs():
    assert [r.name for r in select_rungs("kp-triton,hf-eager")] == ["hf-eager", "kp-triton"]
    assert len(select_rungs(None)) == len(RUNG_NAMES) == 8
    with pytest.raises(UsageError, match="unknown rung 'nope'"):
        select_rungs("hf-eager,nope")


def test_bin_savings_and_results_file(tmp_path):
    first = {"512/128": {"status": "ok", "requests": 10, "batch": 4, "energy_per_batch_j": 400.0},
             "1024/256": {"status": "failed", "requests": 2, "batch": 0}}
    last = {"512/128": {"status": "ok", "requests": 10, "batch": 8, "energy_per_batch_j": 200.0}}
    bins = bin_savings(first, last)
    assert [b.key for b in bins] == ["512/128", "1024/256"]
    assert bins[0].saving_pct == pytest.approx(75.0) and bins[1].saving_pct is None
    rungs = link([rung("hf-eager", [200.0], [20.0]), rung("kp-triton", [50.0], [2.0])])
    names = {c.name for c in ladder_cases(rungs, [])}
    assert "rung/kp-triton/mean_power_w" in names and "rung/hf-eager/time_s" in names
    w = WorkloadLadder("azure-code", "tiny", "kp-eager", "kp-triton", 10.0, 6.0, None, None, bins)
    dev = {"name": "NVIDIA H200", "driver": "x"}
    write_ladder_results(rungs, [], device_info=dev, results_dir=tmp_path)
    path = write_ladder_results([], [w], device_info=dev, results_dir=tmp_path, merge=True)
    doc = json.loads(path.read_text())
    assert path.name == "ladder-h200.json" and doc["device"]["name"] == "NVIDIA H200" and "git_revision" in doc
    rows = {c["name"]: c["value"] for c in doc["cases"]}
    assert rows["workload/azure-code/saving_pct"] == pytest.approx(40.0)
    assert rows["rung/kp-triton/j_per_request"] == pytest.approx(50.0)  # kept by the merge


def test_change_text_signs():
    assert change_text(1.1, 0.9) == "+10.0% time at -10.0% power: -1.0% energy"
    assert math.isclose(0.7 * 1.08, 0.756)


def _cli(*args: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "kernelprof", "ladder", *args], capture_output=True, text=True,
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "COLUMNS": "400"})


def test_cli_help_and_bad_input():
    h = _cli("--help")
    assert h.returncode == 0 and "kp-triton-max-batch" in h.stdout
    bad = _cli("--rungs", "nope")
    assert bad.returncode == 2 and "unknown rung 'nope'" in bad.stderr + bad.stdout
    zero = _cli("--batch", "0")
    assert zero.returncode == 2 and "--batch" in zero.stderr + zero.stdout


def test_ladder_png(tmp_path):
    from kernelprof.outputs.plots import ladder_png

    rungs = link([rung("hf-eager", [200.0], [20.0]), rung("kp-triton", [50.0], [2.0])])
    p = ladder_png(rungs, tmp_path / "ladder.png", title="t")
    assert p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no measured rung"):
        ladder_png([RungResult("kp-fp8", "fp8", False, "tiny", 8, 512, 128)], tmp_path / "x.png", title="t")


def test_render_ladder_shows_verdicts_and_flags(capsys):
    from kernelprof.cli.ladder import render_ladder
    from kernelprof.cli.output import console

    rows = link([rung("hf-eager", [200.0], [20.0]),
                 RungResult("kp-fp8", "fp8", False, "tiny", 8, 512, 128, flags=("not_supported",)),
                 rung("kp-triton", [50.0], [2.0])])
    width = console.width
    console.width = 300  # one line per row, so the cells can be matched whole
    try:
        with console.capture() as cap:
            render_ladder([r.to_json() for r in rows])
    finally:
        console.width = width
    text = cap.get()
    assert "saves energy" in text and "not_supported" in text and "-75.0% energy" in text


@pytest.mark.gpu
def test_tiny_ladder_on_gpu(tmp_path):
    from kernelprof.methods.ladder_run import LadderConfig, run_ladder

    cfg = LadderConfig("tiny", batch=2, input_len=64, output_len=8, repeats=2, min_inrun_s=0.5)
    out = tmp_path / "l.jsonl"
    rows = run_ladder(cfg, select_rungs("kp-eager,kp-fp8,kp-triton"), out=out)
    assert [r.name for r in rows] == ["kp-eager", "kp-triton", "kp-fp8"]  # ladder order, whatever the request order
    assert rows[0].j_per_request > 0 and rows[1].change is not None and rows[1].change.below == "kp-eager"
    assert "not_supported" in rows[2].flags
    again = run_ladder(cfg, select_rungs("kp-eager,kp-fp8,kp-triton"), out=out)  # resumes: nothing re-measured
    assert [r.repeats for r in again] == [r.repeats for r in rows]
