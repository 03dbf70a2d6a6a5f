"""PowerSampler: runs a sampler core in the background while a program runs.

mode="thread": a daemon thread in this process, woken by an Event; mode="process": a child Python
process, talking to the parent through a small frame protocol (below). Either sleeps between the
core's tasks (Event.wait / select), never spinning. A runner that dies makes `check()` and `stop()`
raise MeasurementError; it never returns a silently empty trace.
"""
from __future__ import annotations

import json
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from kernelprof import errors
from kernelprof.errors import MeasurementError
from kernelprof.sampling.core import SamplerConfig, SamplerCore
from kernelprof.sampling.powertrace import PowerTrace, Sources
from kernelprof.sampling.readers.common import Reader, make_reader


class PowerSampler:
    """Background power sampler for one or more GPUs (NVML indices).

    mode="thread": a daemon thread in this process (its Python work takes the GIL for tens of us
    per poll); mode="process": a child Python process (no GIL contention, ~1 s to start).
    `reader` is a Reader object (thread mode only) or a spec dict for the reader registry's
    `make_reader` ({"kind": name} or {"vendor": v}; default {"kind": "nvml"}).

        with PowerSampler([0]) as s:
            ...; s.mark_counter(); ...
        trace = s.trace
    """

    def __init__(self, gpus: list[int] | tuple[int, ...] = (0,), *, mode: str = "thread",
                 config: SamplerConfig | None = None, reader: Reader | dict[str, Any] | None = None) -> None:
        if mode not in ("thread", "process"):
            raise errors.UsageError(f"mode must be 'thread' or 'process', got {mode!r}")
        self.gpus = list(gpus)
        self.mode = mode
        # None: the core takes the defaults for its reader's channels (SamplerConfig.for_channels)
        self.config = config
        self._reader_arg = reader if reader is not None else {"kind": "nvml"}
        if mode == "process" and not isinstance(self._reader_arg, dict):
            raise errors.UsageError("process mode needs a reader spec dict (the child builds its own reader)")
        self.sources: list[Sources] = []
        self.trace: PowerTrace | None = None
        self._runner: _ThreadRunner | _ProcessRunner | None = None

    def start(self) -> "PowerSampler":
        """Start sampling in the background (a thread or a child process, by `mode`); returns self."""
        if self._runner is not None:
            raise errors.UsageError("this PowerSampler was already started")
        if self.mode == "thread":
            reader = make_reader(self._reader_arg) if isinstance(self._reader_arg, dict) else self._reader_arg
            provenance = getattr(reader, "provenance", "measured")
            self._runner = _ThreadRunner(SamplerCore(reader, self.gpus, self.config, mode="thread"), provenance)
        else:
            self._runner = _ProcessRunner(self.gpus, self.config, self._reader_arg)
        self.sources = self._runner.start()
        return self

    def mark_counter(self, precise: bool = False) -> None:
        """Ask for an energy-counter reading now (asynchronous; ~4 ms in the sampler, not here)."""
        self._require_running().mark_counter(precise)

    def check(self) -> None:
        """Raise MeasurementError if the sampler has died."""
        self._require_running().check()

    def peek_samples(self, k: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """Buffered samples drained so far for the k-th watched GPU (thread mode; None in process mode)."""
        runner = self._require_running()
        return runner.core.samples_so_far(k) if isinstance(runner, _ThreadRunner) else None

    def stop(self) -> PowerTrace:
        """Stop sampling, drain the buffers once more and return everything read as a PowerTrace."""
        runner = self._require_running()
        trace = runner.stop()
        empty = not any(len(g.samples_t_us) or len(g.instant_t_us) or len(g.average_t_us) or len(g.counter_j)
                        for g in trace.gpus)
        if empty:
            raise MeasurementError("the power sampler stopped without a single power reading")
        self.trace = trace
        return trace

    def abort(self) -> None:
        """Stop sampling without collecting a trace (after a failure in the measured code)."""
        if self._runner is not None:
            self._runner.abort()

    def _require_running(self):
        if self._runner is None:
            raise errors.UsageError("the PowerSampler was not started")
        return self._runner

    def __enter__(self) -> "PowerSampler":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._runner is None:
            return
        if exc_type is None:
            self.stop()
        else:
            self.abort()


class _ThreadRunner:
    def __init__(self, core: SamplerCore, provenance: str) -> None:
        self.core = core
        self.provenance = provenance
        self._wake = threading.Event()
        self._started = threading.Event()
        self._commands: deque = deque()
        self._stop = False
        self._error: str | None = None
        self._error_exc: BaseException | None = None
        self._trace: PowerTrace | None = None
        self._sources: list[Sources] = []
        self._thread = threading.Thread(target=self._run, name="kernelprof-power-sampler", daemon=True)

    def start(self) -> list[Sources]:
        self._thread.start()
        self._started.wait(60.0)
        if self._error_exc is not None:
            if isinstance(self._error_exc, errors.KernelprofError):
                raise self._error_exc
            raise MeasurementError(f"the power sampler failed to start: {self._error}")
        return self._sources

    def _run(self) -> None:
        try:
            self._sources = self.core.begin()
            self._started.set()
            while True:
                self._wake.wait(self.core.seconds_until_due())
                self._wake.clear()
                while self._commands:
                    cmd, arg = self._commands.popleft()
                    if cmd == "mark":
                        self.core.mark_counter(*arg)
                if self._stop:
                    break
                self.core.tick()
            self._trace = self.core.finish(self.provenance)
        except BaseException as exc:  # noqa: BLE001 - reported to the profiled program by check()/stop()
            self._error_exc = exc
            self._error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        finally:
            self._started.set()

    def mark_counter(self, precise: bool) -> None:
        self.check()
        self._commands.append(("mark", (precise, time.time_ns())))
        self._wake.set()

    def check(self) -> None:
        if self._error is not None:
            raise MeasurementError(f"the power sampler thread died: {self._error.splitlines()[0]}")
        if not self._thread.is_alive() and not self._stop:
            raise MeasurementError("the power sampler thread is no longer running")

    def stop(self) -> PowerTrace:
        self.check()
        self._stop = True
        self._wake.set()
        self._thread.join(30.0)
        if self._thread.is_alive():
            raise MeasurementError("the power sampler thread did not stop within 30 s")
        if self._error is not None or self._trace is None:
            raise MeasurementError(f"the power sampler thread died: {(self._error or 'no trace').splitlines()[0]}")
        return self._trace

    def abort(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(5.0)


_CHILD_CODE = "import sys; from kernelprof.sampling.runners import _child_main; sys.exit(_child_main(sys.argv[1:]))"

# Child-process protocol: parent -> child lines on stdin ("mark <0|1> <time_ns>", "stop"); child -> parent
# frames on its original stdout: one tag byte ("R" ready, "T" trace, "E" error), 8-byte length,
# a pickle.
def _write_frame(fd: int, tag: bytes, obj: Any) -> None:
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    data = tag + struct.pack("<Q", len(blob)) + blob
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    out = bytearray()
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


def _read_frame(fd: int, timeout_s: float) -> tuple[bytes, Any]:
    deadline = time.monotonic() + timeout_s
    head = _read_exact(fd, 9, deadline)
    (length,) = struct.unpack("<Q", head[1:])
    return head[:1], pickle.loads(_read_exact(fd, length, deadline))


class _ProcessRunner:
    def __init__(self, gpus: list[int], config: SamplerConfig | None, reader_spec: dict[str, Any]) -> None:
        self.args = {"gpus": gpus, "config": None if config is None else config.to_json(), "reader": reader_spec,
                     "own_pid": os.getpid()}
        self.proc: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile()
        self._stopped = False

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no message)"

    def start(self) -> list[Sources]:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD_CODE, json.dumps(self.args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        try:
            tag, obj = _read_frame(self.proc.stdout.fileno(), 60.0)
        except (EOFError, TimeoutError):
            self.abort()
            raise MeasurementError(f"the power sampler process did not start: {self._stderr_tail()}")
        if tag == b"E":
            self.proc.wait(10)
            _raise_child_error(obj)
        return obj

    def _send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.check()
            raise MeasurementError("the power sampler process stopped reading commands")

    def mark_counter(self, precise: bool) -> None:
        self.check()
        self._send(f"mark {int(bool(precise))} {time.time_ns()}")

    def check(self) -> None:
        code = self.proc.poll()
        if code is not None and not self._stopped:
            raise MeasurementError(f"the power sampler process died (exit code {code}): {self._stderr_tail()}")

    def stop(self) -> PowerTrace:
        self.check()
        self._stopped = True
        self._send("stop")
        try:
            tag, obj = _read_frame(self.proc.stdout.fileno(), 60.0)
        except (EOFError, TimeoutError):
            self.abort()
            raise MeasurementError(f"the power sampler process died before returning its trace: {self._stderr_tail()}")
        self.proc.wait(10)
        if tag == b"E":
            _raise_child_error(obj)
        return obj

    def abort(self) -> None:
        self._stopped = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _raise_child_error(obj: dict[str, str]) -> None:
    cls = getattr(errors, obj.get("type", ""), None)
    if isinstance(cls, type) and issubclass(cls, errors.KernelprofError):
        raise cls(obj["message"])
    raise MeasurementError(f"the power sampler process failed: {obj.get('type')}: {obj.get('message')}")


def _child_main(argv: list[str]) -> int:
    """Body of the sampler child process (started as `python -c _CHILD_CODE '<json args>'`)."""
    out_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints must not corrupt the frame stream
    args = json.loads(argv[0])
    try:
        reader = make_reader(args["reader"])
        config = SamplerConfig(**args["config"]) if args["config"] is not None else None
        core = SamplerCore(reader, args["gpus"], config, own_pid=args["own_pid"], mode="process")
        sources = core.begin()
    except BaseException as exc:  # noqa: BLE001
        _write_frame(out_fd, b"E", {"type": type(exc).__name__, "message": str(exc)})
        return 1
    _write_frame(out_fd, b"R", sources)
    provenance = getattr(reader, "provenance", "measured")  # "replayed" for a replay, as in thread mode
    stdin_fd = sys.stdin.fileno()
    pending = b""
    try:
        while True:
            r, _, _ = select.select([stdin_fd], [], [], core.seconds_until_due())
            stop = False
            if r:
                chunk = os.read(stdin_fd, 4096)
                if not chunk:  # the parent is gone: nobody will read a trace
                    return 0
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.startswith(b"mark"):
                        _, flag, requested = line.split()
                        core.mark_counter(precise=flag == b"1", requested_ns=int(requested))
                    elif line.strip() == b"stop":
                        stop = True
            if stop:
                break
            core.tick()
        _write_frame(out_fd, b"T", core.finish(provenance))
        return 0
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc()
        _write_frame(out_fd, b"E", {"type": type(exc).__name__, "message": str(exc)})
        return 1

