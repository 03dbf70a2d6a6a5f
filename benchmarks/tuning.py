"""What the tuners (decode_tune.py, gemm_tune.py) share: CUDA-event timing with the L2 flushed
(replayed from CUDA graphs by default, the direct-launch median beside it),
a wall-clock budget, progress lines, and writing the results file and the tuned table after every
point (a run cut short keeps what it measured)."""
from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from kernelprof.outputs.benchfile import Case, device_record, write_results  # noqa: E402
from kernelprof.outputs.environment import git_revision  # noqa: E402
from kernelprof.timeline.cuda_timing import l2_flusher  # noqa: E402

# Inputs smaller than this are followed by an L2 flush before every timed call (H200 L2: 50 MB;
# a 256 MB sweep evicts it whole). Larger inputs stream from HBM anyway.
FLUSH_BELOW_BYTES = 256 << 20
# "write": zero the buffer (do_bench's flush; the call then writes back up to 50 MB of the flush's
# dirty lines). "read": a reduction over it, leaving only clean lines (kernelprof/timeline/cuda_timing.py).
FLUSH_KINDS = {"write": "flush", "read": "flush-read"}


@dataclass(frozen=True)
class Timing:
    """Per-call times of `reps` calls, each after an L2 flush when `flushed`.

    method "graph": the calls (and flushes) captured in one CUDA graph, replayed `replays` times;
    per call = (replay time - the same graph of flushes alone) / reps, and p20/p80 are over the
    replays. method "direct": CUDA events around each call launched from Python (host launch time
    shows whenever it exceeds the flush's GPU time)."""

    median_ms: float
    p20_ms: float
    p80_ms: float
    reps: int
    flushed: bool
    method: str = "direct"
    direct_median_ms: float | None = None  # graph mode: the direct-launch median beside it
    flush_kind: str = "write"  # how the flush swept L2, when `flushed` (FLUSH_KINDS)

    def to_json(self) -> dict[str, Any]:
        out = {"median_us": round(self.median_ms * 1e3, 3), "p20_us": round(self.p20_ms * 1e3, 3),
               "p80_us": round(self.p80_ms * 1e3, 3), "reps": self.reps, "l2_flushed": self.flushed,
               "timing": self.method}
        if self.flushed:
            out["l2_flush"] = self.flush_kind
        if self.direct_median_ms is not None:
            out["direct_median_us"] = round(self.direct_median_ms * 1e3, 3)
        return out


class Timer:
    """Times a callable with CUDA events; the flush buffer is allocated once.

    Before timing, `warm_ms` of back-to-back calls: a candidate timed straight after its compile
    (seconds of idle GPU; the H200 idles at 345 MHz SM clock, KINDS.md) would otherwise be timed
    while the clock ramps. `mode="graph"` (the default) times the calls replayed from a CUDA graph,
    as the model's decode step runs them, so Python launch cost (two Triton launches and a workspace
    for a split-K GEMM) cannot decide between candidates; the direct median is kept beside it.
    `flush` is how the L2 flush sweeps (FLUSH_KINDS); every Timing records it."""

    def __init__(self, max_reps: int = 30, min_reps: int = 5, target_ms: float = 40.0, *, mode: str = "graph",
                 warm_ms: float = 25.0, replays: int = 7, flush: str = "write"):
        if mode not in ("graph", "direct"):
            raise ValueError(f"mode must be 'graph' or 'direct', got {mode!r}")
        if flush not in FLUSH_KINDS:
            raise ValueError(f"flush must be one of {', '.join(map(repr, FLUSH_KINDS))}, got {flush!r}")
        self.max_reps, self.min_reps, self.target_ms = max_reps, min_reps, target_ms
        self.mode, self.warm_ms, self.replays, self.flush_kind = mode, warm_ms, replays, flush
        self._sweep = l2_flusher(FLUSH_KINDS[flush])

    def _events_ms(self, launch: Callable[[], Any]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        launch()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)

    def time(self, fn: Callable[[], Any], input_bytes: int) -> Timing:
        flush = input_bytes < FLUSH_BELOW_BYTES
        # Two untimed calls (first-touch, allocator), then one to size the repetitions.
        fn()
        fn()
        est_ms = max(self._events_ms(fn), 1e-3)
        flush_ms = self._events_ms(self._sweep) if flush else 0.0
        for _ in range(int(min(2000, max(1, self.warm_ms / (est_ms + flush_ms))))):
            if flush:
                self._sweep()
            fn()
        reps = int(min(self.max_reps, max(self.min_reps, self.target_ms / est_ms)))
        direct = self._direct(fn, reps, flush)
        if self.mode == "direct":
            return direct
        try:
            return self._graph(fn, max(reps, 20), flush, direct.median_ms)
        except Exception as exc:  # noqa: BLE001 - a variant that cannot be captured is still timed
            torch.cuda.synchronize()
            return Timing(direct.median_ms, direct.p20_ms, direct.p80_ms, direct.reps, flush,
                          f"direct (graph capture failed: {error_line(exc)})", direct.median_ms, self.flush_kind)

    def _direct(self, fn: Callable[[], Any], reps: int, flush: bool) -> Timing:
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        for i in range(reps):
            if flush:
                self._sweep()  # also gives the host time to queue the call behind it
            starts[i].record()
            fn()
            ends[i].record()
        torch.cuda.synchronize()
        ms = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
        q = statistics.quantiles(ms, n=10, method="inclusive") if len(ms) > 1 else [ms[0]] * 9
        return Timing(statistics.median(ms), q[1], q[7], reps, flush, flush_kind=self.flush_kind)

    def _graph(self, fn: Callable[[], Any], reps: int, flush: bool, direct_ms: float) -> Timing:
        def capture(body: Callable[[], None]) -> torch.cuda.CUDAGraph:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for _ in range(reps):
                    body()
            torch.cuda.synchronize()
            return g

        def pair() -> None:
            if flush:
                self._sweep()
            fn()

        g_pair = capture(pair)
        g_flush = capture(self._sweep) if flush else None
        g_pair.replay()  # one untimed replay of each: the graphs' own first launch
        if g_flush is not None:
            g_flush.replay()
        pair_ms, flush_ms = [], []
        for _ in range(self.replays):  # interleaved, so a drift in clocks hits both alike
            pair_ms.append(self._events_ms(g_pair.replay))
            if g_flush is not None:
                flush_ms.append(self._events_ms(g_flush.replay))
        base = statistics.median(flush_ms) if flush_ms else 0.0
        per_call = sorted((t - base) / reps for t in pair_ms)
        q = statistics.quantiles(per_call, n=10, method="inclusive") if len(per_call) > 1 else [per_call[0]] * 9
        return Timing(statistics.median(per_call), q[1], q[7], reps, flush, "graph", direct_ms, self.flush_kind)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.to(torch.float64)
    return float((out.to(torch.float64) - ref).norm() / ref.norm())


def error_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:240]}" if text else type(exc).__name__


@dataclass
class TuneRun:
    """The results file and tuned table of one tuner run, rewritten after every point."""

    benchmark: str
    table_path: Path
    out_dir: Path | None
    budget_s: float
    results_dir: Path | None = None  # None: benchmarks/results
    started: float = field(default_factory=time.monotonic)
    cases: list[Case] = field(default_factory=list)
    table_entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=lambda: {"skipped": [], "failures": []})

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def over_budget(self) -> bool:
        return self.elapsed_s() > self.budget_s

    def log(self, msg: str) -> None:
        print(f"[{self.elapsed_s():6.1f} s] {msg}", flush=True)

    def point(self, label: str, measure: Callable[[], None]) -> None:
        """Measure one point; a failure is noted and the run goes on. Files rewritten after each."""
        try:
            measure()
        except Exception as exc:  # noqa: BLE001 - one point must not lose the others
            self.notes["failures"].append({"point": label, "error": error_line(exc)})
            self.log(f"  FAILED {error_line(exc)}")
        torch.cuda.empty_cache()
        self.write()

    def finish(self) -> int:
        self.write()
        self.log(f"done: {len(self.cases)} points measured, {len(self.notes['skipped'])} skipped")
        return 0

    def write(self) -> None:
        device = device_record()
        name = torch.cuda.get_device_name()
        self.notes["elapsed_s"] = round(self.elapsed_s(), 1)
        self.notes["driver"] = device.get("driver")
        write_results(self.benchmark, self.cases, device=device, notes=self.notes, results_dir=self.results_dir)
        if self.out_dir is not None:
            write_results(self.benchmark, self.cases, device=device, notes=self.notes, results_dir=self.out_dir)
        gpu_entry = {
            "entries": self.table_entries, "written_by": f"benchmarks/{self.benchmark.replace('-', '_')}.py",
            "git_revision": git_revision(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "torch": torch.__version__, "triton": _triton_version(), "driver": device.get("driver")}
        # The table is keyed by GPU name: replace this card's entry and keep the others' (a tune on an
        # H100 used to drop the H200's). The copy in out_dir, named by op ('decode-tuned_h200.json'
        # as both tuners share one folder), holds this card's entry alone.
        copy = self.out_dir / f"{self.table_path.parent.name}-{self.table_path.name}" if self.out_dir else None
        for path, others in [(self.table_path, _other_gpus(self.table_path, name))] + ([(copy, {})] if copy else []):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            doc = {"version": 1, "gpus": {**others, name: gpu_entry}}
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
            tmp.replace(path)


def _other_gpus(path: Path, name: str) -> dict:
    """The entries of GPUs other than `name` in the version-1 table at `path` ({} if none or unreadable)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("gpus"), dict):
        return {}
    return {k: v for k, v in doc["gpus"].items() if k != name}


def _triton_version() -> str | None:
    try:
        import triton
    except ImportError:
        return None
    return triton.__version__
