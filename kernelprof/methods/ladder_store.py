"""The ladder's rungs on disk: one record per rung in kernelprof's resumable JSONL store.

Each line is a store record (`kernelprof.outputs.jsonl_store`): `{"v": 2, "key": <rung name>,
"status": "ok"|"failed", "config": {...}, "rung": RungResult.to_json()}`. `config` is the ladder's
settings plus the GPU it ran on (name, UUID, driver), so a resume on another GPU or with other settings
stops and says what differs, and a file can be re-reported or turned into a results file on a machine
without a GPU, naming the GPU that measured it. A rung that failed (a compile error) is measured again
on resume; a rung that ran out of memory, or is not supported, is a final answer (status "ok").

Files written before the store (one bare `RungResult` per line, settings in `extra["ladder_key"]`, no
GPU identity) are read as legacy files: they still report and plot, but a resume refuses them, and a
results file from one needs the GPU named by the user (`--gpu-name`), since the file does not say.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelprof.errors import RunFileError, UsageError
from kernelprof.methods.ladder import RungResult
from kernelprof.outputs.jsonl_store import Appender, prepare, read_store

RETRIED_FLAGS = ("failed",)   # transient: measured again on resume


@dataclass(frozen=True)
class LadderFile:
    """What a ladder JSONL holds: rungs by name (file order), the configuration and GPU they ran under."""

    path: Path
    rungs: dict[str, RungResult]
    config: dict[str, Any] | None        # None for a legacy file
    legacy: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def device(self) -> dict[str, Any] | None:
        """name / uuid / driver of the GPU that measured the rungs (None when the file does not say)."""
        c = self.config or {}
        if not c.get("gpu_name"):
            return None
        return {"name": c["gpu_name"], "uuid": c.get("gpu_uuid"), "driver": c.get("driver")}


def is_ladder_jsonl(path: str | Path) -> bool:
    """True when the first record of `path` is a ladder rung (store record or legacy line)."""
    try:
        with Path(path).open("rb") as f:
            first = f.readline()
        d = json.loads(first.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(d, dict) and ("rung" in d or "ladder_key" in (d.get("extra") or {}))


def _rung(d: dict, where: str) -> RungResult:
    """A rung from its JSON, or a corrupt-file error naming where it was."""
    try:
        return RungResult.from_json(d)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise RunFileError(f"{where} is not a ladder rung ({type(exc).__name__}: {exc}); the file is corrupt") from None


def _status(r: RungResult) -> str:
    return "failed" if any(f in RETRIED_FLAGS for f in r.flags) else "ok"


def _validate(rec: dict, where: str) -> None:
    if not isinstance(rec.get("rung"), dict):
        raise RunFileError(f"{where} has no \"rung\" object; it is not a ladder record")


def _read_legacy(path: Path) -> LadderFile:
    rungs: dict[str, RungResult] = {}
    warnings: list[str] = []
    lines = path.read_bytes().split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if n == len(lines):  # the last line without a newline: a crash mid-write
                warnings.append(f"{path}: the last line (line {n}) is torn and is dropped")
                continue
            raise RunFileError(f"{path}: line {n} is not JSON; the file is corrupt") from None
        if not isinstance(d, dict) or "name" not in d:
            raise RunFileError(f"{path}: line {n} is not a ladder rung; the file is corrupt")
        r = _rung(d, f"{path}: line {n}")
        if r.name in rungs and _status(r) == "failed" and _status(rungs[r.name]) == "ok":
            continue
        rungs[r.name] = r
    warnings.append(f"{path} was written before ladder files recorded their GPU (legacy format); it reports, "
                    "but cannot be resumed")
    return LadderFile(path, rungs, None, legacy=True, warnings=tuple(warnings))


def _is_legacy(path: Path) -> bool:
    """Whether the file's first record is a bare RungResult (before the store); from line 1 only."""
    with path.open("rb") as f:
        first = f.readline()
    try:
        return "rung" not in json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        raise RunFileError(f"{path}: line 1 is not a JSON record; the file is corrupt") from None


def read_ladder(path: str | Path) -> LadderFile:
    """Every rung of a ladder file, store format or legacy. RunFileError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    if _is_legacy(path):
        return _read_legacy(path)
    read = read_store(path, validate=_validate)
    rungs = {k: _rung(rec["rung"], f"{path}: rung {k!r}") for k, rec in read.records.items()}
    configs = [rec.get("config") for rec in read.records.values()]
    return LadderFile(path, rungs, configs[0] if configs else None, warnings=tuple(read.warnings))


class LadderStore:
    """Open a ladder file for a climb: what is already finished under `config`, and an appender."""

    def __init__(self, path: str | Path, config: dict[str, Any], *, fresh: bool = False):
        self.path = Path(path)
        if self.path.exists() and not fresh and self.path.is_file() and not self.path.stat().st_size == 0:
            if _is_legacy(self.path):  # line 1 only: the store's reader below reads the whole file
                raise UsageError(f"{self.path} is a legacy ladder file (no GPU recorded); it cannot be resumed: "
                                 "pass --fresh to move it aside and start again, or choose another --out")
        read = prepare(self.path, config, resume=True, new_file=fresh, validate=_validate, what="ladder")
        read.emit_warnings("kernelprof ladder")
        self.done = {k: _rung(rec["rung"], f"{self.path}: rung {k!r}") for k, rec in read.records.items()
                     if rec["status"] == "ok"}
        self._appender = Appender(self.path, config)

    def append(self, r: RungResult) -> None:
        self._appender.append({"key": r.name, "status": _status(r), "rung": r.to_json()})

    def close(self) -> None:
        self._appender.close()

    def __enter__(self) -> "LadderStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class SavedLadder:
    """A saved ladder ready to report: rungs in ladder order, linked, and where they were measured."""

    rungs: list[RungResult]
    device: dict[str, Any] | None
    measured_at: dict[str, Any] | None    # {"git_revision", "versions", "note"} for a results file
    warnings: tuple[str, ...]


def saved_ladder(path: str | Path, *, gpu_name: str | None = None, need_device: bool = False,
                 revision: str | None = None) -> SavedLadder:
    """Read a ladder file for reporting. `need_device` (a results file) requires the GPU's name: from the
    file, or from `gpu_name` for a legacy file, labelled as stated by the user (`revision` likewise)."""
    from kernelprof.methods.ladder import RUNG_NAMES, link

    lf = read_ladder(path)
    if not lf.rungs:
        raise RunFileError(f"{lf.path} holds no rungs")
    order = {n: i for i, n in enumerate(RUNG_NAMES)}
    rungs = link(sorted(lf.rungs.values(), key=lambda r: order.get(r.name, len(order))))
    device = lf.device
    if device is None and gpu_name:
        device = {"name": gpu_name, "source": "named by the user (--gpu-name): the ladder file records no GPU"}
    elif device is not None and gpu_name and gpu_name != device["name"]:
        raise UsageError(f"--gpu-name {gpu_name!r} but {lf.path} was measured on {device['name']!r}")
    if need_device and device is None:
        raise UsageError(f"{lf.path} records no GPU (a legacy ladder file); pass --gpu-name with the GPU that "
                         "measured it to write a results file")
    measured = [r.extra.get("measured") for r in rungs if r.extra.get("measured")]
    revisions = sorted({m.get("git_revision") or "unknown" for m in measured})
    if revision and measured:
        raise UsageError(f"{lf.path} records the revision of each rung; --measured-revision is for legacy files")
    measured_at = {"git_revision": ",".join(revisions) if revisions else revision,
                   "versions": measured[0].get("versions") if measured else None,
                   "note": f"written from the saved ladder file {lf.path.name} on a machine that measured nothing"
                           + ("" if measured else "; the file records neither revision nor library versions"
                              + (f" (revision {revision} stated by the user)" if revision else ""))}
    return SavedLadder(rungs, device, measured_at, lf.warnings)
