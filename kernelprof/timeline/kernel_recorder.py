"""The recorder the Profiler drives: torch.profiler (CUPTI) around its `with` block, plus the
clock-marker brackets (kernelprof.timeline.kernel_clock). Needs torch and a GPU.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from kernelprof.timeline.kernel_clock import MARKER_CYCLES, MARKER_PRELOAD_CYCLES

if TYPE_CHECKING:
    from kernelprof.timeline.kernel_trace import KernelTrace


class KernelRecorder:
    """torch.profiler around the Profiler's `with` block, plus the clock-marker brackets.

    Start it before the power sampler: CUPTI's set-up took 4.4 s on an H100 (torch 2.11), which must
    stay outside the measured window. `mark(clock)` goes right after the first anchor and right
    after the window's last event.
    """

    def __init__(self, device: int) -> None:
        import torch

        self.torch = torch
        self.device = device
        self._prof: Any = None
        self._brackets: list[tuple[Any, Any]] = []

    def start(self) -> "KernelRecorder":
        from torch.profiler import ProfilerActivity, profile

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*clears events at the end of each cycle.*")
            self._prof = profile(activities=[ProfilerActivity.CUDA])  # CUDA only: no per-op CPU records
            self._prof.start()
        # Warm-up: CUPTI sets up its activity buffers during the first traced calls (it stalled the
        # first marker bracket by 64 us once on an H100); let that happen here, before the sampler
        # starts and the EventClock takes its first anchor. A fill kernel, not a spin: spins are markers.
        torch = self.torch
        with torch.cuda.device(self.device):
            torch.empty(1, device="cuda").zero_()
            torch.cuda.Event(enable_timing=True).record()
            torch.cuda.synchronize()
        return self

    def mark(self, clock: Any) -> None:
        """Queue preload spin, event, marker spin, event on the clock's stream (see the module docstring)."""
        torch = self.torch
        with torch.cuda.device(self.device):
            torch.cuda._sleep(MARKER_PRELOAD_CYCLES)
            t0 = clock.event()
            torch.cuda._sleep(MARKER_CYCLES)
            t1 = clock.event()
        n = len(self._brackets)
        clock.add(f"clock_marker{n}", f"clock_marker{n}", 0, "clock_marker", t0, t1)
        self._brackets.append((t0, t1))

    def abort(self) -> None:
        if self._prof is not None:
            try:
                self._prof.stop()
            except Exception:  # already failing: leave the original error in charge
                pass
            self._prof = None

    def finish(self, marker_intervals: Sequence[Any], device_uuids: dict[int, str] | None = None) -> KernelTrace:
        """Stop the profiler, read the GPU activity and align it with the fitted marker intervals."""
        prof, self._prof = self._prof, None
        t0 = time.perf_counter()
        prof.stop()  # synchronizes the device, then CUPTI flushes its buffers
        results = getattr(getattr(prof, "profiler", None), "kineto_results", None)
        if results is None:
            from kernelprof.errors import MeasurementError

            raise MeasurementError(f"torch {self.torch.__version__}'s profiler exposes no kineto_results; "
                                   "kernel slices need torch >= 2.4 built with kineto (CUPTI)")
        from torch.autograd import DeviceType
        from kernelprof.timeline.kernel_trace import build_kernel_trace  # imports this module: not at the top
        from kernelprof.timeline.kineto_events import collect_gpu_activity

        act = collect_gpu_activity(results.events(), gpu_device_type=DeviceType.CUDA)
        ivs = sorted(marker_intervals, key=lambda i: i.name)
        kt = build_kernel_trace(act, [(i.t0_ns, i.t1_ns) for i in ivs], marker_device=self.device,
                                device_uuids=device_uuids,
                                source=f"torch.profiler (CUPTI via kineto), torch {self.torch.__version__}")
        return replace(kt, collect_wall_s=time.perf_counter() - t0)
