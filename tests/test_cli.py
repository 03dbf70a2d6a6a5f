"""The CLI on a machine with no GPU: info works, GPU commands refuse with one sentence, bad usage exits 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kernelprof.gpu.devices import cuda_available


def kp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernelprof", *args], capture_output=True, text=True, timeout=120)


def test_info_json_works_anywhere():
    r = kp("info", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {"nvml", "versions", "gpus"} <= set(doc)
    assert doc["versions"]["python"]


def test_info_table_works_anywhere():
    r = kp("info")
    assert r.returncode == 0, r.stderr
    assert "Environment" in r.stdout


@pytest.mark.skipif(cuda_available(), reason="checks the no-GPU refusal")
def test_gpu_command_without_gpu_says_so():
    r = kp("ceilings")
    assert r.returncode == 3
    assert "needs a CUDA GPU" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unknown_option_is_a_usage_error():
    r = kp("info", "--no-such-option")
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
    r = kp("no-such-command")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_bad_value_is_a_usage_error():
    r = kp("ceilings", "--device", "minus-one")
    assert r.returncode == 2 and "invalid int value" in r.stderr


def test_llm_refuses_a_negative_inrun_time_before_looking_for_a_gpu():
    r = kp("llm", "--min-inrun-s", "-1")
    assert r.returncode == 2 and "--min-inrun-s must be >= 0" in r.stderr and "Traceback" not in r.stderr


def _shipped_runs():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "traces"
    return sorted(p for p in [*root.glob("*.json"), *root.glob("*.jsonl")] if not p.name.endswith(".trace.json"))


@pytest.mark.parametrize("path", _shipped_runs(), ids=lambda p: p.name)
def test_report_reprints_every_shipped_recording(path):
    r = kp("report", str(path))
    assert r.returncode == 0, r.stderr
    assert ("recorded" in r.stdout or path.suffix == ".jsonl") and "Traceback" not in r.stderr


def test_report_of_a_corrupt_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{ not json")
    r = kp("report", str(bad))
    assert r.returncode == 6 and "corrupt" in r.stderr and "Traceback" not in r.stderr


def test_demo_without_gpu_reports_shipped_recordings():
    if cuda_available():
        pytest.skip("on a GPU the demo profiles instead")
    r = kp("demo")
    assert r.returncode == 0, r.stderr
    assert "No GPU here" in r.stdout and "recorded" in r.stdout
    assert "llama-3.1-8b" in r.stdout and "cycled" in r.stdout  # the 8B LLM run, both steady-state references


@pytest.mark.parametrize("name", ["llm-llama-3.1-8b-b8-optimized.profile.json", "compare-attention-h100.json",
                                  "sweep-decode-h100.jsonl"])
def test_plot_of_shipped_runs_writes_png(tmp_path, name):
    from pathlib import Path

    out = tmp_path / "p.png"
    r = kp("plot", str(Path(__file__).resolve().parent.parent / "traces" / name), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_refuses_a_run_it_cannot_draw():
    from pathlib import Path

    r = kp("plot", str(Path(__file__).resolve().parent.parent / "traces" / "workload-azure-conv-llama-3.1-8b.json"), "--out", "/dev/null")
    assert r.returncode == 6 and "plot takes" in r.stderr


def test_help_does_not_import_torch():
    # Building every subcommand's parser (what `kernelprof --help` does) must stay light.
    code = "import sys\nfrom kernelprof.cli.main import build_parser\nbuild_parser().format_help()\nprint('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_report_by_kernel_or_range_of_a_profile_prints_that_table_only():
    """`--by kernel|range` on a Profiler run (not only on `kernelprof run` files); it raised a TypeError,
    shown as 'the file is corrupt', until 2026-12-07."""
    from pathlib import Path

    traces = Path(__file__).resolve().parent.parent / "traces"
    with_kernels = traces / "llm-llama-3.1-8b-b8-kernels-optimized.profile.json"
    r = kp("report", str(with_kernels), "--by", "kernel")
    assert r.returncode == 0, r.stderr
    assert "GPU kernels by phase" in r.stdout and f"Profile {with_kernels.name}" not in r.stdout
    r = kp("report", str(with_kernels), "--by", "range")
    assert r.returncode == 0, r.stderr
    assert f"Profile {with_kernels.name}" in r.stdout and "GPU kernels by phase" not in r.stdout
    r = kp("report", str(traces / "demo-profile.json"), "--by", "kernel")
    assert r.returncode == 2 and "recorded no kernels" in r.stderr and "Traceback" not in r.stderr
