"""The GPU-only development tools in benchmarks/ refuse clearly on a machine without a GPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("tool", ["attention_configs.py"])
def test_a_gpu_only_tool_exits_2_with_a_reason_without_a_gpu(tool):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the tool would run")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / tool)], capture_output=True, text=True,
                       timeout=180, env=env)
    assert r.returncode == 2 and "needs a CUDA GPU" in r.stderr
