"""Every shipped recording plots to a PNG (matplotlib Agg, no display), and plot never overwrites its input."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed: kernelprof plot needs it")

from kernelprof.errors import UsageError  # noqa: E402
from kernelprof.outputs.plot_runs import plot_run  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = sorted(p for p in (ROOT / "traces").iterdir()
                    if p.suffix in (".json", ".jsonl") and not p.name.endswith(".trace.json")
                    and not p.name.startswith("workload-") or p.suffix == ".jsonl" and p.name.startswith("workload-"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_each_shipped_recording_plots_to_a_png(path, tmp_path):
    written = plot_run(path, tmp_path / "fig.png")
    assert written and all(p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 10_000 for p in written)
    if path.name.startswith("llm-") and not path.name.endswith(".profile.json"):
        assert [p.name for p in written] == ["fig.png", "fig.timeline.png"]  # bars, then the profile's timeline


def test_plot_refuses_to_overwrite_its_input(tmp_path):
    src = ROOT / "traces" / "demo-profile.json"
    with pytest.raises(UsageError, match="is an input of this command"):
        plot_run(src, src)
