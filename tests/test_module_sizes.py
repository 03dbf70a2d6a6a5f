"""Module sizes (issue 13): a module that fits in one read does one job; the CLI parses and prints.

Library modules stay under 400 lines, CLI modules (kernelprof/cli/) under 150: past that, a module
holds more than one job, or the CLI holds workflow that the Python API cannot call.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kernelprof"
MAX_LINES = 400
MAX_CLI_LINES = 150


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _offenders(paths, limit: int) -> list[str]:
    return sorted(f"{p.relative_to(PACKAGE.parent)}: {n} lines" for p in paths if (n := _lines(p)) > limit)


def test_no_module_over_400_lines():
    offenders = _offenders(PACKAGE.rglob("*.py"), MAX_LINES)
    assert not offenders, f"modules over {MAX_LINES} lines (split them by job):\n" + "\n".join(offenders)


def test_no_cli_module_over_150_lines():
    offenders = _offenders((PACKAGE / "cli").glob("*.py"), MAX_CLI_LINES)
    assert not offenders, (f"CLI modules over {MAX_CLI_LINES} lines (move the workflow into kernelprof.methods or "
                           "kernelprof.outputs, the tables into a *_view module):\n" + "\n".join(offenders))
