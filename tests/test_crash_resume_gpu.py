"""A real short sweep on the GPU, killed with SIGKILL mid-way and resumed: no finished point lost."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]
SWEEP_ARGS = ["--run-s", "1", "--max-run-s", "3", "--max-seconds", "6"]  # a settled run needs >= 2.2 s
GRID = ('[sweep]\nname = "crash"\nop = "gemm"\nvariants = ["cublas"]\n'
        'shapes = ["1024x1024x1024", "2048x2048x2048", "1536x1536x1536", "512x4096x4096"]\n')


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU exit")
def test_crash_sweep_arguments_are_valid(tmp_path):
    """The GPU test's options must pass validation: on a CPU machine the sweep stops at the GPU check
    (exit 3), not at a usage error (exit 2). They went stale once, when the settled-state minimum grew."""
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    r = subprocess.run([sys.executable, "-m", "kernelprof", "sweep", "--grid", str(grid), "--out",
                        str(tmp_path / "s.jsonl"), *SWEEP_ARGS], env=dict(os.environ, PYTHONPATH=str(REPO)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "needs a CUDA GPU" in r.stderr, r.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

def test_real_sweep_killed_and_resumed(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    out = tmp_path / "s.jsonl"
    cmd = [sys.executable, "-m", "kernelprof", "sweep", "--grid", str(grid), "--out", str(out), *SWEEP_ARGS]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # stderr to a file, not a pipe: an unread pipe fills (warnings, progress) and blocks the sweep
    err = (tmp_path / "sweep.err").open("wb")
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or not out.read_bytes().count(b"\n")):
        if p.poll() is not None:  # it exited before its first point: bad arguments, not a crash to resume
            err.close()
            pytest.fail(f"the sweep exited ({p.returncode}) before its first point: "
                        + (tmp_path / "sweep.err").read_text()[-2000:])
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    err.close()
    done = {json.loads(l)["key"] for l in out.read_bytes().split(b"\n") if l.strip().endswith(b"}")}
    assert done, "the sweep was killed before its first point: " + (tmp_path / "sweep.err").read_text()[-2000:]
    r = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    from kernelprof.outputs.jsonl_store import read_store

    recs = read_store(out).records
    assert len(recs) == 4 and all(v["status"] == "ok" for v in recs.values())
    assert done <= set(recs)
    assert len({v["config"]["gpu_uuid"] for v in recs.values()}) == 1
