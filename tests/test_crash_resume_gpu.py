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
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
REPO = Path(__file__).resolve().parents[1]


def test_real_sweep_killed_and_resumed(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('[sweep]\nname = "crash"\nop = "gemm"\nvariants = ["cublas"]\n'
                    'shapes = ["1024x1024x1024", "2048x2048x2048", "1536x1536x1536", "512x4096x4096"]\n')
    out = tmp_path / "s.jsonl"
    cmd = [sys.executable, "-m", "kernelprof", "sweep", "--grid", str(grid), "--out", str(out),
           "--run-s", "1", "--max-run-s", "2", "--max-seconds", "4"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # stderr to a file, not a pipe: an unread pipe fills (warnings, progress) and blocks the sweep
    err = (tmp_path / "sweep.err").open("wb")
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or not out.read_bytes().count(b"\n")):
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
