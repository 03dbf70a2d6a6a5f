"""Crash tests: a sweep and a workload killed with SIGKILL at random points (mid-write included),
then resumed, lose no finished point and give the same totals (CPU, fake measurements)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHILD = r'''
import sys, time, random
sys.path.insert(0, {repo!r})
from kernelprof.methods.sweep import SweepPoint, SweepSpec, run_sweep
from kernelprof.methods.workloads import Bin, Binning
from kernelprof.methods.llm.bin_store import stream_bins
from kernelprof.outputs.jsonl_store import prepare
kind, out, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rng = random.Random()
def pause():
    time.sleep(rng.uniform(0, 0.01))  # ~0.2 s for 40 points: a kill lands mid-run
if kind == "sweep":
    spec = SweepSpec("crash", tuple(SweepPoint("gemm", "cublas", f"{{n}}x64x64", "bf16") for n in range(1, 41)))
    def measure(p):
        pause()
        n = int(p.shape.split("x")[0])
        return {{"energy_j": n * 1e-3, "pad": "x" * rng.randrange(1, 20000)}}  # long lines: torn writes are likely
    run_sweep(spec, measure, out, resume=resume, config={{"kind": "sweep", "sweep": "crash"}})
else:
    binning = Binning("w", tuple(Bin(32 * (i + 1), 8, i + 1) for i in range(40)), 0, 820)
    def measure_bin(b):
        pause()
        return {{"status": "ok", "batch": 4, "energy_per_batch_j": float(b.input_bin), "time_per_batch_s": 0.1,
                 "pad": "y" * rng.randrange(1, 20000)}}
    cfg = {{"kind": "workload", "trace": "w"}}
    read = prepare(out, cfg, resume=resume, new_file=False, what="workload")
    stream_bins(binning, measure_bin, __import__("pathlib").Path(out), read, cfg)
'''


def _child(kind: str, out: Path, resume: bool) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO)), kind, str(out), "1" if resume else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _ok_keys(path: Path) -> set[str]:
    """Keys of whole ok lines on disk (a torn last fragment is not a finished point)."""
    keys = set()
    for line in path.read_bytes().split(b"\n"):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("status") == "ok":
            keys.add(rec["key"])
    return keys


@pytest.mark.parametrize("kind", ["sweep", "workload"])
def test_sigkill_at_random_points_then_resume_loses_nothing(kind, tmp_path):
    from kernelprof.outputs.jsonl_store import read_store

    rng = random.Random(14)
    out = tmp_path / f"{kind}.jsonl"
    kills = 0
    for attempt in range(8):
        size_at_start = out.stat().st_size if out.exists() else -1
        p = _child(kind, out, resume=out.exists())
        # Wait out interpreter start-up (its length varies by machine) until a point lands, then kill
        # at a random moment in the run, mid-write included.
        deadline = time.monotonic() + 60
        while p.poll() is None and time.monotonic() < deadline:
            if out.exists() and out.stat().st_size != size_at_start:
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.06))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            kills += 1
        p.wait()
        if out.exists():
            before = _ok_keys(out)
            # A resume must keep every finished point; read the file as the next run will.
            assert before <= set(read_store(out).records), "a finished point was lost"
        if p.returncode == 0:
            break
    assert kills >= 1, "no kill happened: the test did not test a crash"
    p = _child(kind, out, resume=True)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()[-2000:]
    read = read_store(out)
    assert len(read.records) == 40 and all(r["status"] == "ok" for r in read.records.values())
    field = "result" if kind == "sweep" else "energy_per_batch_j"
    total = sum((r[field]["energy_j"] if kind == "sweep" else r[field]) for r in read.records.values())
    expected = sum(n * 1e-3 for n in range(1, 41)) if kind == "sweep" else sum(32.0 * (i + 1) for i in range(40))
    assert total == pytest.approx(expected, rel=1e-12)
    # Every line of the final file is whole (torn tails repaired, not continued).
    assert out.read_bytes().endswith(b"\n")
