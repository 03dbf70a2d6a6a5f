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
from kernelprof.errors import RunFileError
from kernelprof.methods.ladder import (RUNG_NAMES, Repeat, RungResult, change_text, compare, link, select_rungs,
                                       verdict)
from kernelprof.methods.ladder_store import LadderStore, is_ladder_jsonl, read_ladder, saved_ladder
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


CONFIG = {"kind": "ladder", **KEY, "gpu_name": "NVIDIA H200", "gpu_uuid": "GPU-test", "driver": "580.159.04"}
SHIPPED = Path(__file__).resolve().parents[1] / "traces" / "ladder-llama-3.1-8b-b8-h200.jsonl"


def test_store_resumes_finished_rungs_and_retries_failed_ones(tmp_path):
    p = tmp_path / "ladder.jsonl"
    with LadderStore(p, CONFIG) as st:
        assert st.done == {}
        st.append(rung("hf-eager", [1.0], [1.0]))
        st.append(RungResult("kp-triton", "x", False, "tiny", 8, 512, 128, flags=("failed",)))
        st.append(RungResult("kp-fp8", "x", False, "tiny", 8, 512, 128, flags=("not_supported",)))
    with p.open("a") as f:
        f.write('{"v": 2, "key": "kp-eager", "status": "ok", "rung": {"na')  # a crash mid-write
    st = LadderStore(p, CONFIG)
    assert sorted(st.done) == ["hf-eager", "kp-fp8"]  # the failed rung is measured again, the torn line dropped
    st.append(rung("kp-triton", [2.0], [1.0]))
    st.close()
    lf = read_ladder(p)
    assert list(lf.rungs) == ["hf-eager", "kp-triton", "kp-fp8"] and lf.rungs["kp-triton"].supported
    assert lf.device == {"name": "NVIDIA H200", "uuid": "GPU-test", "driver": "580.159.04"}


def test_store_refuses_other_settings_or_gpu_and_fresh_moves_aside(tmp_path):
    p = tmp_path / "ladder.jsonl"
    with LadderStore(p, CONFIG) as st:
        st.append(rung("hf-eager", [1.0], [1.0]))
    for change in ({"batch": 4}, {"gpu_uuid": "GPU-other"}):
        with pytest.raises(UsageError, match="different configuration"):
            LadderStore(p, {**CONFIG, **change})
    with LadderStore(p, {**CONFIG, "batch": 4}, fresh=True) as st:
        assert st.done == {}
    assert (tmp_path / "ladder.old-1.jsonl").exists()  # the finished rungs are kept, not deleted


def test_legacy_file_reports_but_does_not_resume(tmp_path):
    """The H200 ladder of 2026-12-03 (device call F) was written before rung records carried their GPU."""
    assert is_ladder_jsonl(SHIPPED)
    lf = read_ladder(SHIPPED)
    assert lf.legacy and lf.device is None and len(lf.rungs) == 7
    assert lf.rungs["kp-triton"].j_per_request == pytest.approx(45.62, abs=0.01)
    copy = tmp_path / "old.jsonl"
    copy.write_bytes(SHIPPED.read_bytes())
    with pytest.raises(UsageError, match="legacy ladder file"):
        LadderStore(copy, CONFIG)
    with pytest.raises(UsageError, match="--gpu-name"):
        saved_ladder(copy, need_device=True)
    s = saved_ladder(copy, gpu_name="NVIDIA H200", need_device=True)
    assert s.device["source"].startswith("named by the user") and s.measured_at["versions"] is None
    assert [r.name for r in s.rungs][:3] == ["hf-eager", "hf-sdpa-static-compile", "kp-eager"]
    assert s.rungs[5].change.below == "kp-eager"  # kp-triton vs the measured rung below it


def test_corrupt_ladder_file_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(rung("hf-eager", [1.0], [1.0]).to_json()) + "\n[1, 2]\n")
    with pytest.raises(RunFileError, match="line 2"):
        read_ladder(p)


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
    from kernelprof.cli.ladder_view import render_ladder
    from kernelprof.cli.output import console

    rows = link([rung("hf-eager", [200.0], [20.0]),
                 RungResult("kp-fp8", "fp8", False, "tiny", 8, 512, 128, flags=("not_supported",)),
                 rung("kp-triton", [50.0], [2.0])])
    width = console.width
    console.width = 300  # one line per row, so the cells can be matched whole
    try:
        with console.capture() as cap:
            render_ladder(rows)
    finally:
        console.width = width
    text = cap.get()
    assert "saves energy" in text and "n/a" in text and "-75.0% energy" in text


@pytest.mark.gpu
def test_tiny_ladder_on_gpu(tmp_path):
    from kernelprof.methods.ladder_run import LadderConfig, run_ladder

    cfg = LadderConfig("tiny", batch=2, input_len=64, output_len=8, repeats=2, min_inrun_s=0.5)
    out = tmp_path / "l.jsonl"
    wanted = "kp-eager,kp-fp8,kp-triton,kp-fused-pointwise,kp-cuda-graphs"
    rows = run_ladder(cfg, select_rungs(wanted), out=out)
    # ladder order, whatever the request order; every kernelprof rung is measured, each against the one below
    assert [r.name for r in rows] == ["kp-eager", "kp-cuda-graphs", "kp-fused-pointwise", "kp-triton", "kp-fp8"]
    assert rows[0].j_per_request > 0
    assert [r.change.below for r in rows[1:]] == ["kp-eager", "kp-cuda-graphs", "kp-fused-pointwise", "kp-triton"]
    fp8 = rows[4]
    assert fp8.supported and fp8.j_per_request > 0 and fp8.change.below == "kp-triton"
    assert fp8.extra["gemm"] == "fp8" and 0 < fp8.extra["output_difference"]["logits_rel_err"] < 0.2
    again = run_ladder(cfg, select_rungs(wanted), out=out)  # resumes: nothing re-measured
    assert [r.repeats for r in again] == [r.repeats for r in rows]


def test_cli_from_saved_file_reports_plots_and_needs_a_gpu_name_for_results(tmp_path):
    png = tmp_path / "ladder.png"
    r = _cli("--from", str(SHIPPED), "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert "kp-triton vs kp-eager" in r.stdout and "saves energy" in r.stdout and png.read_bytes()[:4] == b"\x89PNG"
    bad = _cli("--from", str(SHIPPED), "--results")
    assert bad.returncode == 2 and "--gpu-name" in bad.stderr
    root = Path(__file__).resolve().parents[1]
    rep = subprocess.run([sys.executable, "-m", "kernelprof", "report", str(SHIPPED)], capture_output=True,
                         text=True, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "COLUMNS": "80"})
    assert rep.returncode == 0, rep.stderr
    assert "45.6 J" in rep.stdout and max(len(line) for line in rep.stdout.splitlines()) <= 80


def test_run_ladder_streams_resumes_and_refuses_another_gpu(tmp_path, monkeypatch):
    """run_ladder's orchestration with the GPU parts replaced (the measurement itself is a GPU test):
    each rung is appended as it finishes, a rerun measures only what is missing or failed, and a file
    from another GPU is refused before anything is measured."""
    import types

    import kernelprof.gpu.devices as devices
    import kernelprof.methods.ladder_run as lr

    facts = types.SimpleNamespace(name="NVIDIA H200", uuid="GPU-a", driver_version="580.159.04")
    monkeypatch.setattr(devices, "require_gpu", lambda *a, **k: None)
    monkeypatch.setattr(devices, "gpu_facts", lambda *a, **k: facts)
    measured = []

    def fake_measure(spec, cfg, cache):
        measured.append(spec.name)
        if spec.name == "kp-eager" and measured.count("kp-eager") == 1:
            return RungResult(spec.name, spec.adds, False, cfg.model, cfg.batch, cfg.input_len, cfg.output_len,
                              flags=("failed",))
        return rung(spec.name, [100.0 if spec.name == "hf-eager" else 50.0], [8.0])

    monkeypatch.setattr(lr, "measure_rung", fake_measure)
    cfg = lr.LadderConfig("tiny", batch=8, input_len=512, output_len=128, repeats=1)
    out = tmp_path / "ladder.jsonl"
    rungs = select_rungs("hf-eager,kp-eager,kp-triton")
    rows = lr.run_ladder(cfg, rungs, out=out)
    assert measured == ["hf-eager", "kp-eager", "kp-triton"] and len(out.read_text().splitlines()) == 3
    assert rows[2].change is not None and rows[2].change.below == "hf-eager"  # the failed rung is skipped over
    rows = lr.run_ladder(cfg, rungs, out=out)
    assert measured[3:] == ["kp-eager"]  # only the failed rung again
    assert rows[2].change.below == "kp-eager"
    assert read_ladder(out).device == {"name": "NVIDIA H200", "uuid": "GPU-a", "driver": "580.159.04"}
    facts.uuid = "GPU-b"
    with pytest.raises(UsageError, match="gpu_uuid"):
        lr.run_ladder(cfg, rungs, out=out)
    assert measured[4:] == []


def test_plot_command_draws_a_saved_ladder(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "l.png"
    r = subprocess.run([sys.executable, "-m", "kernelprof", "plot", str(SHIPPED), "--out", str(out)],
                       capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == b"\x89PNG" and str(out) in r.stdout


def test_report_csv_of_a_ladder_and_of_a_corrupt_jsonl(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "kernelprof", "report", str(SHIPPED), "--csv"], capture_output=True,
                       text=True, cwd=root, env=env)
    assert r.returncode == 0, r.stderr
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["rung"] for x in rows][:3] == ["hf-eager", "hf-sdpa-static-compile", "kp-eager"]
    triton = next(x for x in rows if x["rung"] == "kp-triton")
    assert float(triton["j_per_request"]) == pytest.approx(45.62, abs=0.01) and triton["verdict"] == "saves energy"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    r = subprocess.run([sys.executable, "-m", "kernelprof", "report", str(bad), "--csv"], capture_output=True,
                       text=True, cwd=root, env=env)
    assert r.returncode == 6 and "corrupt" in r.stderr and "internal error" not in r.stderr  # was a traceback


@pytest.mark.parametrize("argv", [["report", "{p}"], ["report", "{p}", "--csv"], ["plot", "{p}", "--out", "{p}.png"],
                                  ["ladder", "--from", "{p}"]])
def test_corrupt_ladder_records_are_clear_errors_everywhere(tmp_path, argv):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"v": 2, "key": "hf-eager", "status": "ok", "config": {}, "rung": {"name": 3}}\n')
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "kernelprof", *[a.format(p=p) for a in argv]], capture_output=True,
                       text=True, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 6 and "corrupt" in r.stderr and "internal error" not in r.stderr, r.stderr


WORKLOAD_H200 = Path(__file__).resolve().parents[1] / "traces" / "workload-azure-conv-llama-3.1-8b-h200.jsonl"


def _workload_folder(tmp_path: Path) -> Path:
    """optimized.jsonl: the real azure-conv recording (H200, e300645); eager.jsonl: the same bins with
    mode "eager" and 4x the energy, hand-made to check the arithmetic (not a measurement)."""
    d = tmp_path / "wl"
    d.mkdir()
    lines = WORKLOAD_H200.read_text().splitlines()
    (d / "optimized.jsonl").write_text("\n".join(lines) + "\n")
    eager = []
    for line in lines:
        rec = json.loads(line)
        if "key" in rec:
            rec["config"]["mode"] = "eager"
            rec["energy_per_batch_j"] *= 4
            rec["phases"] = {k: {**v, "energy_j": 4 * v["energy_j"]} for k, v in rec["phases"].items()}
        eager.append(json.dumps(rec))
    (d / "eager.jsonl").write_text("\n".join(eager) + "\n")
    return d


def test_saved_workload_ladder_reads_both_rungs_without_a_gpu(tmp_path):
    from kernelprof.methods.ladder_workload import revisions_in, saved_workload_ladder

    d = _workload_folder(tmp_path)
    w = saved_workload_ladder("azure-conv", "llama-3.1-8b", out_dir=d)
    assert w.saving_pct == pytest.approx(75.0)
    assert w.first_time_s == pytest.approx(w.last_time_s) and w.first_prefill_j == pytest.approx(4 * w.last_prefill_j)
    assert WorkloadLadder.from_json(json.loads(json.dumps(w.to_json()))) == w
    assert w.first_energy_j == pytest.approx(4 * w.last_energy_j)
    # The recorded paper estimate (the GPU's sheet) is used: the two rungs share it, so equal FLOPs.
    assert w.first_ratio == pytest.approx(4 * w.last_ratio) and w.last_ratio > 1
    assert len(w.bins) == 43 and all(b.saving_pct == pytest.approx(75.0) for b in w.bins)
    assert any("GPU-0c90c76e" in n for n in w.notes)
    assert revisions_in(d) == "not recorded"  # the e300645 file predates per-bin revisions
    (d / "eager.jsonl").unlink()
    one = saved_workload_ladder("azure-conv", "llama-3.1-8b", out_dir=d)
    assert one.saving_pct is None and "one rung measured so far" in one.notes[0]
    with pytest.raises(UsageError, match="different configuration"):
        saved_workload_ladder("azure-code", "llama-3.1-8b", out_dir=d)


def test_cli_workload_ladder_from_folder(tmp_path):
    d = _workload_folder(tmp_path)
    png = tmp_path / "saving.png"
    r = _cli("--workload", "azure-conv", "--from", str(d), "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert "saving 75.0 %" in r.stdout and "32/128" in r.stdout and png.read_bytes()[:4] == b"\x89PNG"
    # Same GPU time (the eager file is the optimized one, 4x the joules): all of it is power.
    assert "+0.0% time at +300.0% power" not in r.stdout and "+0.0% time at -75.0% power: -75.0% energy" in r.stdout
    bad = _cli("--workload", "azure-conv", "--from", str(d), "--results")
    assert bad.returncode == 2 and "--gpu-name" in bad.stderr
    both = _cli("--workload", "azure-conv", "--from", str(d), "--only", "first")
    assert both.returncode == 2 and "--only" in both.stderr
    empty = _cli("--workload", "azure-conv", "--from", str(tmp_path / "nothing"))
    assert empty.returncode == 2 and "nothing to read" in empty.stderr


def test_resume_on_another_card_only_when_asked():
    # The real eager file of two calls: its bins carry two cards' uuids; a third card resumes only with
    # other_gpu, and never with another driver.
    from kernelprof.methods.llm.bin_store import read_bin_store, resume_config, workload_config
    from kernelprof.methods.workloads import load_workload
    from kernelprof.outputs.jsonl_store import check_resume

    read = read_bin_store(WORKLOAD_H200.parent / "ladder-azure-conv-h200" / "eager.jsonl")
    assert len({r["config"]["gpu_uuid"] for r in read.records.values()}) == 2
    here = workload_config(load_workload("azure-conv"), "llama-3.1-8b", "eager", 64,
                           gpu={"gpu_uuid": "GPU-another", "driver": "580.159.04"})
    with pytest.raises(UsageError, match="gpu_uuid"):
        check_resume(read, resume_config(here, other_gpu=False))
    check_resume(read, resume_config(here, other_gpu=True))
    with pytest.raises(UsageError, match="driver"):
        check_resume(read, resume_config({**here, "driver": "590.1"}, other_gpu=True))


def test_partial_rung_is_compared_over_the_shared_bins_only(tmp_path):
    # The state azure-code was left in on 12-04: eager lacking the 10 largest bins. Summing each rung over
    # its own bins set 46 bins against 56 and printed a 29.5% saving; over the shared bins it is 61.6%.
    from kernelprof.methods.ladder_workload import saved_workload_ladder

    d = _workload_folder(tmp_path)
    full = saved_workload_ladder("azure-conv", "llama-3.1-8b", out_dir=d)
    lines = (d / "eager.jsonl").read_text().splitlines()
    dropped = {"8192/64", "8192/128"}
    kept = [ln for ln in lines if json.loads(ln).get("key") not in dropped]
    assert len(kept) == len(lines) - 2
    (d / "eager.jsonl").write_text("\n".join(kept) + "\n")
    w = saved_workload_ladder("azure-conv", "llama-3.1-8b", out_dir=d)
    assert w.partial and (w.bins_compared, w.bins_in_trace) == (41, 43) and not full.partial
    assert w.saving_pct == pytest.approx(75.0)  # both rungs over the same 41 bins: still exactly 4x
    assert w.last_energy_j < full.last_energy_j and w.first_energy_j == pytest.approx(4 * w.last_energy_j)
    assert any("8192/128, 8192/64" in n or "8192/64, 8192/128" in n for n in w.notes)
    names = {c.name for c in ladder_cases([], [w])}
    assert names == {"workload/azure-conv/partial_saving_pct"}
    r = _cli("--workload", "azure-conv", "--from", str(d))
    assert r.returncode == 0 and "PARTIAL: over 41 of 43 bins" in r.stdout
