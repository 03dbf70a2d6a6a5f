"""`kernelprof report <file>`: reprint the tables of any saved run, on any machine (no GPU needed)."""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from kernelprof.cli.output import console, print_json
from kernelprof.errors import KernelprofError, RunFileError
from kernelprof.outputs.runfile import load_run

# Run kind -> "module:function" taking the loaded RunFile. Imported lazily: a report of one kind
# must not need the others' dependencies.
RENDERERS = {
    "kernel": "kernelprof.cli.kernel_view:render_run",
    "compare": "kernelprof.cli.compare:render_run",
    "profile": "kernelprof.cli.profile_view:render_run",
    "sensor": "kernelprof.cli.sensor:render_run",
    "counters": "kernelprof.cli.counters_view:render_counters",
    "llm": "kernelprof.cli.llm_view:render_run",
    "llm-tp": "kernelprof.cli.llm_tp:render_run",
    "llm-marginals": "kernelprof.cli.llm_view:render_marginals_run",
    "workload": "kernelprof.cli.workload_view:render_run",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="print the tables of a saved run file (or a sweep's .jsonl); no GPU needed")
    p.add_argument("path", help="a run file (.json) or a sweep's results (.jsonl)")
    p.add_argument("--json", action="store_true", help="print the run's payload as JSON")
    p.add_argument("--by", choices=("range", "kernel", "class"),
                   help="`kernelprof run` files: one table only; profiles with kernels: --by class splits each "
                        "phase into kernel classes")
    p.add_argument("--csv", action="store_true", help="print one CSV row per phase (profile runs) or point/bin (.jsonl)")
    p.add_argument("--steps", action="store_true", help="list every repeated phase (decode steps) instead of a summary")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if getattr(args, "csv", False):
        from kernelprof.outputs.tables import write_csv

        _reading(path, lambda: write_csv(path))
        return 0
    if path.suffix == ".jsonl":
        from kernelprof.methods.ladder_store import is_ladder_jsonl

        if is_ladder_jsonl(path):
            return _render_ladder_file(path, as_json=args.json)
        from kernelprof.cli.sweep import render_jsonl
        from kernelprof.cli.workload_view import is_workload_jsonl, render_workload_jsonl

        if is_workload_jsonl(path):
            return render_workload_jsonl(path, as_json=args.json)

        return render_jsonl(path, as_json=args.json)
    r = load_run(path)
    if args.json:
        print_json({"kind": r.kind, "version": r.version, "environment": r.environment, "payload": r.payload})
        return 0
    if r.kind == "profile" and getattr(args, "by", None) == "class" and "program" not in r.payload:
        from kernelprof.cli.phase_classes_view import render_phase_classes

        _reading(path, lambda: render_phase_classes(path))
        return 0
    target = "kernelprof.cli.program_view:render_run" if "program" in r.payload else RENDERERS.get(r.kind)
    if target is None:
        raise RunFileError(f"{path} is a '{r.kind}' run, which this kernelprof cannot display; "
                           f"known kinds: {sorted(RENDERERS)} (use --json to see its contents)")
    module, func = target.split(":")
    kwargs: dict = {"by": args.by} if getattr(args, "by", None) else {}
    if target == RENDERERS["profile"]:
        kwargs["steps"] = bool(getattr(args, "steps", False))
    _reading(path, lambda: getattr(importlib.import_module(module), func)(r, **kwargs), kind=r.kind)
    env = r.environment
    gpus = ", ".join(g.get("name", "?") for g in env.get("gpus", [])) or "no GPU recorded"
    console.print(f"[dim]recorded {env.get('created', '?')} on {gpus}, kernelprof {env.get('git_revision', '?')}, "
                  f"torch {env.get('versions', {}).get('torch')}, triton {env.get('versions', {}).get('triton')}[/]")
    return 0


def _render_ladder_file(path: Path, *, as_json: bool) -> int:
    from kernelprof.cli.ladder_view import render_ladder
    from kernelprof.methods.ladder_store import saved_ladder

    saved = saved_ladder(path)
    if as_json:
        print_json([r.to_json() for r in saved.rungs])
        return 0
    for w in saved.warnings:
        console.print(f"[yellow]note: {w}[/]")
    render_ladder(saved.rungs)
    return 0


def _reading(path: Path, render, *, kind: str | None = None) -> None:
    """Run `render`; a payload that lacks what it reads (the file is corrupt or hand-edited) is a
    corrupt-file error naming the file, not an internal error."""
    try:
        render()
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        if isinstance(exc, KernelprofError):
            raise
        what = f"a '{kind}' run" if kind else "a run"
        raise RunFileError(f"{path} is {what} that lacks or misstates what its report reads "
                           f"({type(exc).__name__}: {exc}); the file is corrupt or from an incompatible kernelprof") from exc
