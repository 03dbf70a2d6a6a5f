"""Where kernelprof keeps per-GPU measurements it reuses (ceilings, sensor profiles, calibrations)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """$KERNELPROF_CACHE, else $XDG_CACHE_HOME/kernelprof, else ~/.cache/kernelprof."""
    root = os.environ.get("KERNELPROF_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "kernelprof" if xdg else Path.home() / ".cache" / "kernelprof"


def cache_path(kind: str, *keys: str | None) -> Path:
    """`<cache>/<kind>-<key1>-<key2>.json` with the keys made filename-safe."""
    safe = [re.sub(r"[^A-Za-z0-9._-]+", "_", k or "unknown") for k in keys]
    return cache_dir() / ("-".join([kind, *safe]) + ".json")


def read_cached(path: Path) -> dict[str, Any] | None:
    """The cached JSON document, or None if absent or unreadable (a cache is never authoritative)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None  # a list or number is not one of ours


def write_cached(path: Path, doc: dict[str, Any]) -> bool:
    """Write atomically; a cache that cannot be written (read-only, full disk) is a warning, never
    an error: it runs after a measurement, which must not be lost to it. Returns whether it was written."""
    from kernelprof.errors import OutputError, warn
    from kernelprof.outputs.safe_paths import atomic_write_text

    try:
        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
        return True
    except OutputError as exc:
        warn(f"the result is kept but not cached ({exc})")
        return False
