"""Run the hostile-input table (tests/hostile_cases.py) in-process and count the outcomes.

    python tests/hostile_runner.py --kernelprof-root /tmp/kp-base --json tests/data/hostile/before.json

imports `kernelprof` from --kernelprof-root (so the same table measures an old tree), runs every
case through `kernelprof.cli.main.main(argv)` with stdout and stderr captured, and writes
{"cases", "clean", "wrong_error", "tracebacks", "silently_wrong", "outcomes": {name: ...}}.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def error_lines(stderr: str) -> list[str]:
    """stderr lines that are not argparse's usage block or a warning."""
    out = []
    in_usage = False
    for line in stderr.splitlines():
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and line.startswith(" "):
            continue
        in_usage = False
        if line.strip() and ": warning:" not in line:
            out.append(line)
    return out


def run_case(main, case, fx, hashes_of) -> dict:
    before = hashes_of(fx, case.inputs)
    out, err = io.StringIO(), io.StringIO()
    tb = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(case.argv))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except BaseException:  # noqa: BLE001 - counting escapes is the point
            code = None
            tb = traceback.format_exc()
    after = hashes_of(fx, case.inputs)
    stdout, stderr = out.getvalue(), err.getvalue()
    text = stdout + stderr
    if tb is not None or "Traceback (most recent call last)" in text:
        outcome = "traceback"
    elif before != after:
        outcome = "silently_wrong"
    elif case.exit != 0 and code == 0:
        outcome = "silently_wrong"
    elif case.exit == 0 and code == 0 and case.expect_re and not re.search(case.expect_re, text):
        outcome = "silently_wrong"
    elif code != case.exit:
        outcome = "wrong_error"
    elif case.exit != 0 and len(error_lines(stderr)) != 1:
        outcome = "wrong_error"
    elif case.expect_re and not re.search(case.expect_re, text):
        outcome = "wrong_error"
    else:
        outcome = "clean"
    return {"outcome": outcome, "exit": code, "expected": case.exit,
            "stderr": (tb.strip().splitlines()[-1] if tb else stderr.strip())[-300:]}


def run_all(main, workdir: Path) -> dict:
    sys.path.insert(0, str(HERE))
    from hostile_cases import build_fixtures, cases, file_hashes

    fx = build_fixtures(workdir / "fx")
    results = {}
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for c in cases(fx):
            results[c.name] = run_case(main, c, fx, file_hashes)
    finally:
        os.chdir(cwd)
    counts = {k: sum(r["outcome"] == k for r in results.values())
              for k in ("clean", "wrong_error", "traceback", "silently_wrong")}
    return {"cases": len(results), "clean": counts["clean"], "wrong_error": counts["wrong_error"],
            "tracebacks": counts["traceback"], "silently_wrong": counts["silently_wrong"], "outcomes": results}


def main_cli() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernelprof-root", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(a.kernelprof_root).resolve()))
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    from kernelprof.cli.main import main

    with tempfile.TemporaryDirectory() as d:
        os.environ["KERNELPROF_CACHE"] = str(Path(d) / "cache")
        res = run_all(main, Path(d))
    res["label"] = a.label
    Path(a.json).write_text(json.dumps(res, indent=1, ensure_ascii=True) + "\n")
    print({k: v for k, v in res.items() if k != "outcomes"})
    return 0


if __name__ == "__main__":
    sys.exit(main_cli())
