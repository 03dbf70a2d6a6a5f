"""Versioned run files: one measurement's record, loadable on a machine with no GPU.

A run is a JSON document `{"format": "kernelprof-run", "version": N, "kind": ..., "environment":
..., "payload": ...}`. Bulky numeric arrays (power samples, clocks) go to a compressed side file
`<name>.arrays.npz` whose SHA-256 the JSON records, so a truncated or swapped side file is caught.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kernelprof.errors import RunFileError

FORMAT = "kernelprof-run"
# Bump on any change an older reader would misread; keep loaders for old versions.
# 2: an llm run's phases hold per-method estimates (methods/llm/result.py); version 1 had flat
#    method x metric keys, which `LLMResult.from_json` still reads. Other kinds are unchanged.
VERSION = 2


@dataclass
class RunFile:
    kind: str
    payload: dict[str, Any]
    environment: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    version: int = VERSION
    path: Path | None = None


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, numpy scalars/arrays, Paths and non-finite floats to plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def arrays_path(path: Path) -> Path:
    path = Path(path)
    stem = path.name[:-5] if path.name.endswith(".json") else path.name
    return path.with_name(stem + ".arrays.npz")


def default_run_path(stem: str) -> Path:
    """runs/<stem>-<local time YYYYmmdd-HHMMSS>.json: where a command saves a run not given -o."""
    import datetime as _dt

    return Path("runs") / f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"


def save_run(path: str | Path, kind: str, payload: Any, *, arrays: dict[str, np.ndarray] | None = None,
             environment: dict[str, Any] | None = None) -> Path:
    """Write a run file (and its side arrays) atomically; returns the JSON path."""
    if environment is None:
        from kernelprof.outputs.environment import collect_environment

        environment = collect_environment()
    from kernelprof.outputs.safe_paths import atomic_write_bytes, atomic_write_text

    path = Path(path)
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kind": kind,
                           "environment": to_jsonable(environment), "payload": to_jsonable(payload)}
    if arrays:
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        blob = buf.getvalue()
        side = arrays_path(path)
        atomic_write_bytes(side, blob)
        doc["arrays"] = {"file": side.name, "sha256": hashlib.sha256(blob).hexdigest(),
                         "names": sorted(arrays)}
    atomic_write_text(path, json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return path


def load_run(path: str | Path, *, kind: str | tuple[str, ...] | None = None) -> RunFile:
    """Read a run file; RunFileError (with what to do) if missing, corrupt, newer or of another kind."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"no run file at {path}")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path} is not valid JSON ({exc}); the file is corrupt or truncated") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RunFileError(f"{path} is not a kernelprof run file (no \"format\": \"{FORMAT}\")")
    version = doc.get("version")
    if not isinstance(version, int):
        raise RunFileError(f"{path} has no integer format version")
    if version > VERSION:
        raise RunFileError(f"{path} is format version {version}, newer than this kernelprof reads "
                           f"({VERSION}); upgrade kernelprof to read it")
    if version < 1:
        raise RunFileError(f"{path} is format version {version}, which no kernelprof release wrote")
    run_kind = doc.get("kind")
    if isinstance(version, bool):
        raise RunFileError(f"{path} has no integer format version (got {version!r})")
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and run_kind not in wanted:
        raise RunFileError(f"{path} is a '{run_kind}' run; expected {' or '.join(wanted)}")
    for key in ("payload", "environment"):
        if not isinstance(doc.get(key), dict):
            raise RunFileError(f"{path} lacks its '{key}' section; the file is corrupt")
    if not isinstance(run_kind, str):
        raise RunFileError(f"{path} has no run kind; the file is corrupt")
    arrays = _load_arrays(path, doc.get("arrays"))
    return RunFile(kind=run_kind, payload=doc["payload"], environment=doc["environment"],
                   arrays=arrays, version=version, path=path)


def _load_arrays(path: Path, meta: Any) -> dict[str, np.ndarray]:
    """The side arrays a run lists: a plain file name beside the run (never a path out of its
    folder), matching its SHA-256, loaded without pickles, holding every listed name."""
    if meta is None:
        return {}
    if not isinstance(meta, dict) or not isinstance(meta.get("file"), str) or not isinstance(meta.get("sha256"), str) \
            or not isinstance(meta.get("names", []), list):
        raise RunFileError(f"{path}: its 'arrays' entry must name a file, a sha256 and a list of names; the file is corrupt")
    name = meta["file"]
    if name != Path(name).name or name in ("", ".", "..") or "\\" in name:
        raise RunFileError(f"{path}: its arrays file {name!r} is not a plain file name beside the run; refused")
    side = path.with_name(name)
    if side.resolve().parent != path.resolve().parent:
        raise RunFileError(f"{path}: its arrays file {name!r} resolves outside the run's folder; refused")
    if not side.is_file():
        raise RunFileError(f"{path} needs its arrays file {side.name}, which is missing; copy it beside the run")
    blob = side.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise RunFileError(f"{side} does not match the checksum in {path.name}; it is corrupt or from another run")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise RunFileError(f"{side} is not a numpy array file kernelprof can read ({exc}); it is corrupt") from None
    missing = [n for n in meta.get("names", []) if n not in arrays]
    if missing:
        raise RunFileError(f"{side} lacks {len(missing)} of the arrays {path.name} lists (e.g. {missing[0]!r}); "
                           "it is corrupt or from another run")
    return arrays
