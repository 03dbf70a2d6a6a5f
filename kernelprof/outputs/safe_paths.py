"""Outputs that never replace an input and never leave half a file: temp file + os.replace.

A run file, cache, trace or plot is written beside its destination under a temporary name and
renamed over it, so a crash or a full disk leaves the old file or the new one, never a torn one.
An output path that is (or resolves to) one of the command's inputs is refused before anything runs.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from kernelprof.errors import OutputError, UsageError


def refuse_overwriting_inputs(out: str | Path, inputs: Iterable[str | Path]) -> None:
    """UsageError if `out` is the same file as any input (symlinks and relative paths resolved)."""
    o = Path(out).resolve()
    for i in inputs:
        p = Path(i)
        if p.resolve() == o or (o.exists() and p.exists() and os.path.samefile(o, p)):
            raise UsageError(f"the output {out} is an input of this command ({i}); choose another --out")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary path beside `path` (same suffix), then rename it over `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
