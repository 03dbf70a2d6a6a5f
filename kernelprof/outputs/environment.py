"""Where a measurement came from: library versions, git revision, host, and the GPUs' facts."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def git_revision() -> str:
    """Short git revision of the kernelprof checkout, '+dirty' if it has uncommitted changes.

    $KERNELPROF_GIT_REVISION overrides it, for copies of the tree without .git (the GPU machine).
    """
    override = os.environ.get("KERNELPROF_GIT_REVISION")
    if override:
        return override
    try:
        rev = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, Any]:
    """Versions of the libraries a measurement depends on (None where not installed)."""
    versions: dict[str, Any] = {"python": platform.python_version()}
    try:
        import torch

        versions["torch"] = torch.__version__
        versions["cuda_runtime"] = torch.version.cuda
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        versions["cudnn"] = cudnn
    except ImportError:
        versions["torch"] = None
    try:
        import triton

        versions["triton"] = triton.__version__
    except ImportError:
        versions["triton"] = None
    cupy = next((v for v in (_version(d) for d in ("cupy", "cupy-cuda13x", "cupy-cuda12x")) if v), None)
    versions["cupy"] = cupy
    versions["nvidia_ml_py"] = _version("nvidia-ml-py")
    versions["numpy"] = _version("numpy")
    versions["kernelprof"] = _version("kernelprof") or "source"
    return versions


def collect_environment() -> dict[str, Any]:
    """Everything a run file records about where it was measured (works without a GPU)."""
    from kernelprof.gpu.devices import discover_gpus

    gpus = discover_gpus()
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "git_revision": git_revision(),
        "versions": library_versions(),
        "gpus": [g.to_json() for g in gpus],
    }
