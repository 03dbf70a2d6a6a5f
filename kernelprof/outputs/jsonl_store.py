"""One resumable JSONL store for streamed records (sweep points, workload bins).

Each line is one JSON object: `{"v": 2, "key": ..., "config": {...}, "status": "ok"|"failed", ...}`.
`config` is the configuration the record was measured under (op or model, mode, trace, batch rule,
measurement settings, GPU UUID, driver, kernelprof version); a resume whose configuration differs
stops and says what differs, so one file never holds two experiments.

Reading is strict: a line that is not UTF-8, not JSON, not an object, or of an unknown version is a
corrupt-file error naming its line. Two cases are handled and reported, never silent:
- a torn tail (a crash mid-write leaves a last line without its newline): if that line is a whole
  JSON object it is kept (and counted), else it is dropped; `open_for_append` then repairs the
  file (adds the newline, or cuts the fragment) so new lines follow whole ones;
- a key recorded twice (a resumed failed point measured again): an "ok" record wins over a "failed"
  one whatever their order, and among records of the same status the last line wins.
Appends are whole lines, flushed and fsynced.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kernelprof.errors import OutputError, RunFileError, UsageError, warn

VERSION = 2        # records with resume identity; version 1 (sweeps) and unversioned (workload bins) are legacy
MAX_LINE_BYTES = 16 * 2**20  # a record is a few kB; a longer line is not one of ours
STATUSES = ("ok", "failed")


@dataclass
class StoreRead:
    path: Path
    records: dict[str, dict[str, Any]]          # by key, after the duplicate rule
    lines: int                                  # records read (torn complete tail included)
    torn: str | None = None                     # "kept" or "dropped" when the last line had no newline
    warnings: list[str] = field(default_factory=list)

    def emit_warnings(self, command: str = "kernelprof") -> None:
        for w in self.warnings:
            warn(w, command=command)


def _check_version(rec: dict, where: str) -> int:
    version = 1
    for name in ("v", "version"):
        if name in rec:
            v = rec[name]
            if isinstance(v, bool) or not isinstance(v, int):
                raise RunFileError(f"{where}: \"{name}\" must be an integer version, got {v!r}; the file is corrupt")
            if v > VERSION:
                raise RunFileError(f"{where}: record version {v} is newer than this kernelprof reads ({VERSION}); "
                                   "upgrade kernelprof")
            if v < 1:
                raise RunFileError(f"{where}: record version {v}, which no kernelprof wrote; the file is corrupt")
            version = v
    return version


def _parse_line(raw: bytes, where: str, validate: Callable[[dict, str], None] | None) -> dict[str, Any]:
    if len(raw) > MAX_LINE_BYTES:
        raise RunFileError(f"{where} is {len(raw)} bytes, longer than any record ({MAX_LINE_BYTES} max); "
                           "the file is corrupt or not a kernelprof JSONL")
    try:
        rec = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunFileError(f"{where} is not UTF-8 text; the file is corrupt") from None
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{where} is not JSON ({exc.msg}); the file is corrupt") from None
    if not isinstance(rec, dict):
        raise RunFileError(f"{where} is a JSON {type(rec).__name__}, not a record object; the file is corrupt")
    _check_version(rec, where)
    if not isinstance(rec.get("key"), str) or not rec["key"]:
        raise RunFileError(f"{where} has no string \"key\"; the file is corrupt")
    if rec.get("status") not in STATUSES:
        raise RunFileError(f"{where}: status must be one of {list(STATUSES)}, got {rec.get('status')!r}")
    if "config" in rec and not isinstance(rec["config"], dict):
        raise RunFileError(f"{where}: \"config\" must be an object, got {type(rec['config']).__name__}")
    if validate is not None:
        validate(rec, where)
    return rec


def read_store(path: str | Path, *, validate: Callable[[dict, str], None] | None = None) -> StoreRead:
    """Every record of a store (see the module docstring for the rules). A missing file reads empty."""
    path = Path(path)
    if not path.exists():
        return StoreRead(path, {}, 0)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RunFileError(f"cannot read {path}: {exc.strerror}") from None
    out = StoreRead(path, {}, 0)
    raw_lines = data.split(b"\n")
    tail = raw_lines.pop()  # b"" when the file ends with a newline
    line_of: dict[str, int] = {}
    numbered = [(i + 1, raw) for i, raw in enumerate(raw_lines)]
    if tail.strip():
        n = len(raw_lines) + 1
        try:
            numbered.append((n, tail))
            _parse_line(tail, f"{path}: line {n}", validate)
            out.torn = "kept"
            out.warnings.append(f"{path}: the last line (line {n}) has no newline (torn write); it is a whole "
                                "record and is kept")
        except RunFileError:
            numbered.pop()
            out.torn = "dropped"
            out.warnings.append(f"{path}: the last line (line {n}) is torn (a crash mid-write) and is dropped; "
                                "its point will be measured again on --resume")
    for n, raw in numbered:
        if not raw.strip():
            continue
        rec = _parse_line(raw, f"{path}: line {n}", validate)
        out.lines += 1
        key = rec["key"]
        prev = out.records.get(key)
        if prev is not None:
            if prev["status"] == "ok" and rec["status"] != "ok":
                out.warnings.append(f"{path}: key {key} is recorded twice; line {n} is a later failed attempt, "
                                    f"the ok record of line {line_of[key]} is used")
                continue
            out.warnings.append(f"{path}: duplicate key {key} on lines {line_of[key]} and {n}; line {n} is used")
        out.records[key] = rec
        line_of[key] = n
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """'name: old vs new' for each field of `new` that `old` lacks or holds otherwise."""
    diffs = []
    for k, v in new.items():
        if k not in old:
            diffs.append(f"{k}: (absent) in the file vs {v!r} now")
        elif old[k] != v:
            diffs.append(f"{k}: {old[k]!r} in the file vs {v!r} now")
    return diffs


def check_resume(read: StoreRead, config: dict[str, Any]) -> None:
    """Refuse to continue a store measured under another configuration (only the fields of `config`
    are compared, so the part known before the GPU can be checked before the GPU is touched)."""
    for key, rec in read.records.items():
        if "config" not in rec:
            raise RunFileError(f"{read.path} was written by an older kernelprof whose records carry no "
                               "configuration, so a resume cannot tell whether it matches; pass --new-file to "
                               "move it aside and start again, or choose another --out")
        diffs = config_diff(rec["config"], config)
        if diffs:
            raise UsageError(f"{read.path} was measured under a different configuration ({'; '.join(diffs[:4])}); "
                             "pass --new-file to move it aside and start a new file, or choose another --out")


def move_aside(path: Path) -> Path:
    """Rename an existing store to <stem>.old-N<suffix> (never overwritten); returns the new name."""
    n = 1
    while (dest := path.with_name(f"{path.stem}.old-{n}{path.suffix}")).exists():
        n += 1
    try:
        path.rename(dest)
    except OSError as exc:
        raise OutputError(f"cannot move {path} aside to {dest.name}: {exc.strerror}") from None
    return dest


def prepare(path: str | Path, config: dict[str, Any], *, resume: bool, new_file: bool,
            validate: Callable[[dict, str], None] | None = None, what: str = "sweep") -> StoreRead:
    """Before any measurement: refuse an existing file without --resume/--new-file, check a resume's
    configuration, move a file aside for --new-file. Returns what is already recorded."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise UsageError(f"--out {path} is a directory; give a .jsonl file path")
    if path.exists() and new_file:
        dest = move_aside(path)
        warn(f"moved the existing {path.name} aside to {dest.name}; starting a new file")
        return StoreRead(path, {}, 0)
    if path.exists() and not resume:
        raise UsageError(f"{path} exists: pass --resume to continue that {what}, --new-file to start again, "
                         "or choose another --out")
    read = read_store(path, validate=validate) if resume else StoreRead(path, {}, 0)
    check_resume(read, config)
    return read


class Appender:
    """Appends whole records to a store: one line each, flushed and fsynced before `append` returns."""

    def __init__(self, path: str | Path, config: dict[str, Any]):
        self.path = Path(path)
        self.config = config
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._repair_tail()
            self._f = self.path.open("ab")
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror}") from None

    def _repair_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        try:
            json.loads(data[cut:].decode("utf-8"))
            whole = True
        except (UnicodeDecodeError, json.JSONDecodeError):
            whole = False
        with self.path.open("r+b") as f:
            if whole:  # a whole record that lost only its newline: keep it
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
            else:
                f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())

    def append(self, rec: dict[str, Any]) -> dict[str, Any]:
        from kernelprof.outputs.runfile import to_jsonable

        rec = {"v": VERSION, **rec, "config": self.config}
        line = (json.dumps(to_jsonable(rec), allow_nan=False) + "\n").encode()
        try:
            self._f.write(line)
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as exc:
            raise OutputError(f"cannot append to {self.path}: {exc.strerror}; the records before it are safe") from None
        return rec

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "Appender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
