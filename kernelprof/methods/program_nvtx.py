"""A program's own NVTX ranges and `kernelprof.phase(...)` turned into Profiler phases.

While `kernelprof run` runs a Python program, `torch.cuda.nvtx.range_push/range_pop` (and
`torch.cuda.nvtx.range`, which calls them) are wrapped: each still emits its NVTX range (Nsight
sees it as before) and also opens or closes a nested phase on the Profiler's CUDA-event clock.
Only the main thread's ranges become phases (NVTX stacks are per thread). `range_start/range_end`
(unnested, by id) are left alone. `kernelprof.phase("name")` does the same without NVTX by hand;
outside `kernelprof run` it is a plain NVTX range, or nothing without torch.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

_ACTIVE: "NVTXCapture | None" = None


class NVTXCapture:
    """Install with `with NVTXCapture(prof):`; `notes` says what was unbalanced afterwards."""

    def __init__(self, prof: Any, kind: str = "nvtx") -> None:
        self.prof, self.kind = prof, kind
        self.notes: list[str] = []
        self._stack: list[tuple[Any, ...]] = []
        self._unmatched_pops = 0
        self._main = threading.main_thread()
        self._saved: dict[str, Any] = {}

    def push(self, name: str, kind: str | None = None) -> None:
        self._stack.append(self.prof.begin_phase(str(name), kind or self.kind))

    def pop(self) -> None:
        if not self._stack:
            self._unmatched_pops += 1
            return
        self.prof.end_phase(self._stack.pop())

    def __enter__(self) -> "NVTXCapture":
        global _ACTIVE
        if _ACTIVE is not None:
            raise RuntimeError("an NVTX capture is already active")
        nvtx = sys.modules.get("torch.cuda.nvtx")
        if nvtx is None:
            import torch.cuda.nvtx as nvtx  # noqa: PLW0621 - the Profiler imported torch already
        self._nvtx = nvtx
        push0, pop0 = nvtx.range_push, nvtx.range_pop
        self._saved = {"range_push": push0, "range_pop": pop0}

        def range_push(msg: str) -> int:
            depth = push0(msg)
            if threading.current_thread() is self._main:
                self.push(msg)
            return depth

        def range_pop() -> int:
            depth = pop0()
            if threading.current_thread() is self._main:
                self.pop()
            return depth

        nvtx.range_push, nvtx.range_pop = range_push, range_pop
        _ACTIVE = self
        return self

    def __exit__(self, *exc: Any) -> None:
        global _ACTIVE
        for k, v in self._saved.items():
            setattr(self._nvtx, k, v)
        _ACTIVE = None
        if self._stack:
            self.notes.append(f"{len(self._stack)} NVTX range(s) were still open when the program ended "
                              f"({', '.join(t[0] for t in self._stack)}); they are closed at its end")
            while self._stack:
                self.prof.end_phase(self._stack.pop())
        if self._unmatched_pops:
            self.notes.append(f"{self._unmatched_pops} range_pop() call(s) had no matching push (ignored)")

    def raw_push(self, name: str) -> None:
        self._saved["range_push"](name)

    def raw_pop(self) -> None:
        self._saved["range_pop"]()


@contextmanager
def phase(name: str) -> Iterator[None]:
    """A named phase of the program under `kernelprof run`; elsewhere an NVTX range (or nothing)."""
    cap = _ACTIVE
    if cap is not None:
        cap.raw_push(name)
        cap.push(name, "phase")
        try:
            yield
        finally:
            cap.pop()
            cap.raw_pop()
        return
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        with torch.cuda.nvtx.range(name):
            yield
    else:
        yield
