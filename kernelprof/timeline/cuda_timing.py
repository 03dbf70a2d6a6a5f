"""CUDA-event timing of any callable.

`time_cuda(fn)` warms up (by time and by count), then times repetitions each bracketed by a pair of
CUDA events, and returns a `Timing` with median and quantiles. The device clears L2 between
repetitions (`cache="flush"`, a zeroing sweep as `triton.testing.do_bench` does; `cache="flush-read"`, a
reading sweep that leaves no dirty lines behind) or the callable rotates among
input sets larger than L2 (`cache="rotate"`, as FlashInfer's bench does), so that a kernel whose
inputs fit in L2 is not timed on a warm cache. For kernels too short to time one launch at a time,
`graph_calls=N` captures N launches in a CUDA graph and times its replays.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from kernelprof.gpu.devices import require_gpu
from kernelprof.errors import UsageError

# do_bench's flush buffer is 256 MB of int32; take at least that, and at least 4x L2 for bigger
# caches. The dtype matters on a power-capped card: the flush's duration sets the GEMM's duty cycle
# and so its clocks (an int8 buffer made 4096^3 bf16 GEMMs read 3% faster than do_bench on H100).
MIN_FLUSH_BYTES = 256 * 1024 * 1024
# How a flush sweeps L2. "flush" zeroes the buffer (do_bench's way): L2 is left full of dirty lines, and
# the timed call pays their write-back as its own reads evict them, up to L2 size / bandwidth (50 MB at
# ~4 TB/s: ~12 us on an H200), a cost that belongs to the flush. "flush-read" reads the buffer instead:
# the lines it leaves are clean and evict for free. (Reasoning, not yet measured: benchmarks/flush_bias.py.)
CACHE_MODES = ("flush", "flush-read", "rotate", "none")


@dataclass(frozen=True)
class Timing:
    """Per-call time of a callable, in milliseconds, over `reps` timed repetitions.

    With `graph_calls > 1`, each repetition replayed a CUDA graph of that many calls and the times
    are per call (replay time / graph_calls).
    """

    median_ms: float
    p20_ms: float
    p80_ms: float
    min_ms: float
    max_ms: float
    mean_ms: float
    reps: int
    warmup_reps: int
    graph_calls: int
    cache: str
    method: str = "cuda_events"

    @property
    def median_s(self) -> float:
        """The median time per call, in seconds."""
        return self.median_ms / 1e3

    @property
    def spread(self) -> float:
        """(p80 - p20) / median: a quick repeatability figure."""
        return (self.p80_ms - self.p20_ms) / self.median_ms if self.median_ms else math.nan

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


def summarize(times_ms: Sequence[float], *, warmup_reps: int, graph_calls: int, cache: str,
              method: str = "cuda_events") -> Timing:
    """Quantiles of per-call times (ms). Median by numpy's default (linear) interpolation."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no timed repetitions")
    p20, med, p80 = np.quantile(t, [0.2, 0.5, 0.8])
    return Timing(median_ms=float(med), p20_ms=float(p20), p80_ms=float(p80), min_ms=float(t.min()),
                  max_ms=float(t.max()), mean_ms=float(t.mean()), reps=int(t.size),
                  warmup_reps=warmup_reps, graph_calls=graph_calls, cache=cache, method=method)


def l2_flush_buffer(device: Any = None):
    """An int32 buffer of max(256 MB, 4 x L2) bytes that `zero_()` sweeps through L2."""
    import torch

    props = torch.cuda.get_device_properties(device if device is not None else torch.cuda.current_device())
    l2 = int(getattr(props, "L2_cache_size", 0) or 0)
    return torch.empty(max(MIN_FLUSH_BYTES, 4 * l2) // 4, dtype=torch.int32, device=device or "cuda")


def l2_flusher(kind: str = "flush", device: Any = None) -> Callable[[], Any]:
    """A no-argument callable that sweeps L2 (graph-capturable: no allocation per call).

    kind "flush": zero the buffer (as do_bench; leaves dirty lines). "flush-read": reduce it into a
    preallocated scalar, so only clean lines of the buffer stay in L2."""
    import torch

    if kind not in ("flush", "flush-read"):
        raise UsageError(f"flush kind must be 'flush' or 'flush-read', got {kind!r}")
    buf = l2_flush_buffer(device)
    if kind == "flush":
        return buf.zero_
    buf.zero_()  # once, so the reduction reads defined memory (its result is never used)
    out = torch.empty((), dtype=torch.int32, device=buf.device)

    def read_sweep() -> None:
        torch.amax(buf, dim=0, out=out)

    return read_sweep


def _tensor_bytes(obj: Any) -> int:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_tensor_bytes(o) for o in obj.values())
    return 0


# Enough copies that a 1 KiB input still rotates 64 MiB, past a 50-60 MB L2 (H100/H200); the old cap of
# 64 left a 256 KB input rotating 16 MiB, inside L2.
MAX_INPUT_SETS = 65_536


def rotating_input_sets(args: tuple, *, min_total_bytes: int | None = None,
                        max_sets: int = MAX_INPUT_SETS) -> list[tuple]:
    """Copies of `args` (tensors cloned, other values shared) whose total size is at least
    `min_total_bytes` (default 4 x L2), so that cycling through them defeats L2 reuse.

    At most `max_sets` copies: for tiny inputs the total can fall short of `min_total_bytes`, so a
    caller should report the coverage it got (`sum of tensor bytes / L2`), as measure_kernel does."""
    import torch

    if min_total_bytes is None:
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        min_total_bytes = 4 * int(getattr(props, "L2_cache_size", 50 * 2**20) or 50 * 2**20)
    one = max(1, _tensor_bytes(args))
    n = int(min(max_sets, max(1, math.ceil(min_total_bytes / one))))

    def clone(o: Any) -> Any:
        if isinstance(o, torch.Tensor):
            return o.clone()
        if isinstance(o, (list, tuple)):
            return type(o)(clone(x) for x in o)
        return o

    return [args] + [tuple(clone(a) for a in args) for _ in range(n - 1)]


def time_cuda(
    fn: Callable[..., Any],
    *args: Any,
    input_sets: Sequence[tuple] | None = None,
    cache: str = "flush",
    warmup_ms: float = 25.0,
    warmup_reps: int = 3,
    reps: int | None = None,
    budget_ms: float = 100.0,
    max_reps: int = 10_000,
    graph_calls: int = 1,
) -> Timing:
    """Time `fn(*args)` with CUDA events.

    - `cache`: "flush" zeroes a buffer larger than L2 before each repetition (outside the timed
      events); "flush-read" reads it instead (no dirty lines left for the timed call to write back,
      see CACHE_MODES); "rotate" cycles through `input_sets` (or sets made by `rotating_input_sets`);
      "none" times back-to-back calls on the same inputs (a warm L2).
    - Warm-up runs until both `warmup_ms` and `warmup_reps` are reached.
    - Repetitions: exactly `reps` if given, else as many as fit in `budget_ms` (at least 5).
    - `graph_calls=N>1` captures N calls in one CUDA graph and times its replays (per-call times).
    """
    require_gpu("timing")
    import torch

    if cache not in CACHE_MODES:
        raise UsageError(f"cache must be one of {', '.join(map(repr, CACHE_MODES))}, got {cache!r}")
    if graph_calls < 1:
        raise UsageError(f"graph_calls must be >= 1, got {graph_calls}")
    if cache == "rotate":
        sets = list(input_sets) if input_sets is not None else rotating_input_sets(args)
    else:
        sets = [args]
    flush = l2_flusher(cache) if cache in ("flush", "flush-read") else None

    step = 0

    def call_once() -> None:
        nonlocal step
        fn(*sets[step % len(sets)])
        step += 1

    if graph_calls > 1:
        # Capture on a side stream after a warm call (allocators and autotuners settle first).
        call_once()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            call_once()
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            for _ in range(graph_calls):
                call_once()
        run = graph.replay
    else:
        run = call_once

    # Estimate the time of one repetition (flush included, as do_bench does) so that warm-up and
    # budget can be counted in reps.
    run()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        if flush is not None:
            flush()
        run()
    end.record()
    torch.cuda.synchronize()
    estimate_ms = max(start.elapsed_time(end) / 5, 1e-4)

    # Warm-up back to back, without flushes, as do_bench does: on a power-capped card this settles
    # the clocks at their sustained-load level before timing (with flushes in the warm-up, 4096^3
    # bf16 GEMMs and SDPA then timed ~2% faster than do_bench on an H100, 2026-11-26).
    n_warmup = max(warmup_reps, math.ceil(warmup_ms / estimate_ms))
    for _ in range(n_warmup):
        run()
    n_reps = reps if reps is not None else int(min(max_reps, max(5, math.ceil(budget_ms / estimate_ms))))

    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n_reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n_reps)]
    for i in range(n_reps):
        if flush is not None:
            flush()
        starts[i].record()
        run()
        ends[i].record()
    torch.cuda.synchronize()
    times = [s.elapsed_time(e) / graph_calls for s, e in zip(starts, ends)]
    return summarize(times, warmup_reps=n_warmup, graph_calls=graph_calls, cache=cache,
                     method="cuda_graph" if graph_calls > 1 else "cuda_events")
