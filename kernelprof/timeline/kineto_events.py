"""Kernels, memcpys and memsets out of torch.profiler's kineto events, as interned names and numpy
arrays on kineto's own clock (kernelprof.timeline.kernel_clock puts them on ours).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

KINDS = ("kernel", "memcpy", "memset")  # `kind` codes index this tuple


@dataclass(frozen=True)
class GPUActivity:
    """Raw GPU activity on kineto's clock (ns), before alignment; arrays sorted by start."""

    names: tuple[str, ...]
    name_index: np.ndarray
    kind: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    stream: np.ndarray
    device: np.ndarray


def _kind_of(name: str, activity_type: str | None) -> int | None:
    """KINDS code, or None for GPU activity that is not a kernel/memcpy/memset (e.g. gpu_user_annotation)."""
    if activity_type is not None:  # torch 2.13 has activity_type(); 2.11 does not
        known = {"kernel": 0, "gpu_memcpy": 1, "gpu_memset": 2}
        if activity_type in known:
            return known[activity_type]
        if activity_type.startswith("gpu_") or "annotation" in activity_type:
            return None
    # CUPTI's own names: "Memcpy HtoD (Pageable -> Device)", "Memset (Device)"; the rest are kernels.
    if name.startswith("Memcpy"):
        return 1
    if name.startswith("Memset"):
        return 2
    return 0


def _is_gpu(device_type: Any, gpu_device_type: Any) -> bool:
    if gpu_device_type is not None:
        return device_type == gpu_device_type
    name = getattr(device_type, "name", None) or str(device_type).rsplit(".", 1)[-1]
    return name == "CUDA"


def collect_gpu_activity(events: Iterable[Any], *, gpu_device_type: Any = None) -> GPUActivity:
    """Kernels, memcpys and memsets out of kineto events (`_KinetoEvent`-like objects).

    Each event needs name(), device_type(), start_ns(), end_ns() (ints, kineto ns),
    device_index() and device_resource_id() (the CUDA stream for GPU events). CPU-side events
    (cudaLaunchKernel, cudaGraphLaunch, ...) are skipped; kernels that a CUDA-graph replay ran
    are GPU events like any other (CUPTI records each node's kernel).
    """
    intern: dict[str, int] = {}
    rows: list[tuple[int, int, int, int, int, int]] = []
    for e in events:
        if not _is_gpu(e.device_type(), gpu_device_type):
            continue
        hidden = getattr(e, "is_hidden_event", None)
        if hidden is not None and hidden():
            continue
        name = e.name()
        at = getattr(e, "activity_type", None)
        kind = _kind_of(name, at() if at is not None else None)
        if kind is None:
            continue
        idx = intern.setdefault(name, len(intern))
        rows.append((idx, kind, int(e.start_ns()), int(e.end_ns()), int(e.device_resource_id()), int(e.device_index())))
    arr = np.array(rows, dtype=np.int64).reshape(-1, 6)
    order = np.argsort(arr[:, 2], kind="stable")
    arr = arr[order]
    return GPUActivity(names=tuple(intern), name_index=arr[:, 0].astype(np.int32), kind=arr[:, 1].astype(np.int8),
                       start_ns=arr[:, 2].copy(), end_ns=arr[:, 3].copy(), stream=arr[:, 4].copy(),
                       device=arr[:, 5].astype(np.int16))
