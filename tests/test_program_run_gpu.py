"""`kernelprof run` on a GPU: examples/program_demo.py end to end."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.gpu


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_run_program_demo(tmp_path):
    from kernelprof.methods.program import RunOptions, parse_command, profile_program
    from kernelprof.methods.program_summary import summarize_program

    spec = parse_command([sys.executable, str(ROOT / "examples" / "program_demo.py"), "--seconds", "8"])
    run = profile_program(spec, RunOptions(out=tmp_path / "demo.json"))
    assert run.outcome.exit_code == 0 and run.trace_path is not None and run.trace_path.exists()
    s = summarize_program(run.run_path)
    paths = {r.path for r in s.ranges}
    assert {"setup", "step", "step/matmul", "step/copy", "step/softmax"} <= paths
    assert s.idle_baseline_w is not None and s.dynamic_j > 0  # busy power above idle
    fit = s.kernel_attribution[0]
    assert fit.balance_j() == pytest.approx(fit.measured_energy_j, rel=1e-9)
    assert abs(fit.residual_j) < 0.05 * fit.measured_energy_j
    from kernelprof.attribution.kernel_classes import auto_group

    gemm = [c for c in fit.classes if c.identifiable and any(auto_group(n) == "gemm" for n in c.members)]
    assert gemm, [(c.name, c.reason) for c in fit.classes]
    assert gemm[0].power_w > s.idle_baseline_w


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_run_exception_saves_profile_and_passes_status(tmp_path):
    from kernelprof.methods.program import RunOptions, parse_command, profile_program

    script = tmp_path / "fails.py"
    script.write_text("import torch\nx = torch.ones(4, device='cuda')\nraise ValueError('from the script')\n")
    run = profile_program(parse_command([str(script)]), RunOptions(out=tmp_path / "f.json"))
    assert run.outcome.status == "raised" and run.outcome.exit_code == 1
    assert "program_raised" in run.flags and run.run_path.exists()
    assert "ValueError: from the script" in run.outcome.traceback_text


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_run_refuses_nested_torch_profiler(tmp_path):
    from kernelprof.methods.program import RunOptions, parse_command, profile_program

    script = tmp_path / "nested.py"
    script.write_text("import torch\nwith torch.profiler.profile():\n    torch.ones(4, device='cuda')\n")
    run = profile_program(parse_command([str(script)]), RunOptions(out=tmp_path / "n.json"))
    assert run.outcome.status == "raised" and "--no-kernels" in run.outcome.traceback_text
