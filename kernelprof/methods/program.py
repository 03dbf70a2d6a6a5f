"""`kernelprof run -- python script.py ARGS`: any program, in-process under the Profiler.

A Python script or module runs in this interpreter (runpy, as `python script.py` would run it) inside
`Profiler(kernels=True)`: the power sampler, CUPTI's kernel record and the program's NVTX ranges
(kernelprof.methods.program_nvtx) turned into nested phases. Before the program, the GPU sits idle
for `idle_s` inside the window: the idle baseline of the whole-run idle/dynamic split. Afterwards,
kernel-class energies come from the window regression (kernelprof.attribution.kernel_regression)
over the program's span after `warmup_s`. The profile is saved whatever the program did: its exit
status, an exception (its traceback, from the script's own frames, is printed after the save) or
Ctrl-C are recorded in the run file. Any other executable runs as a child process: power and
whole-run energy per GPU only, since its kernels and ranges are not visible from here.
"""
from __future__ import annotations

import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from kernelprof.errors import UsageError

PROGRAM_PHASE = "program"
IDLE_PHASE = "(idle baseline)"
BINARY_NOTE = ("kernel and range attribution need a Python program run in-process "
               "(`kernelprof run -- python script.py`); this is the power timeline and whole-run energy per GPU")


@dataclass(frozen=True)
class ProgramSpec:
    kind: str  # "script" | "module" | "binary"
    target: str  # script path, module name or executable
    args: tuple[str, ...]

    @property
    def argv(self) -> list[str]:
        return [self.target, *self.args]

    def display(self) -> str:
        head = {"script": "python", "module": "python -m", "binary": ""}[self.kind]
        return " ".join(x for x in (head, self.target, *self.args) if x)


@dataclass(frozen=True)
class ProgramOutcome:
    status: str  # "ok" | "exit" (non-zero SystemExit) | "raised" | "interrupted"
    exit_code: int
    traceback_text: str | None  # the program's own traceback (raised) or None
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ProgramOutcome":
        return cls(**d)


def parse_command(cmd: Sequence[str]) -> ProgramSpec:
    """The words after `--`: `python script.py ...`, `python -m mod ...`, `script.py ...`, `-m mod ...`,
    or any executable."""
    cmd = list(cmd)
    if not cmd:
        raise UsageError("nothing to run: give the program after `--`, e.g. `kernelprof run -- python train.py`")
    if re.fullmatch(r"python(\d+(\.\d+)?)?", Path(cmd[0]).name):
        cmd = cmd[1:]
        if not cmd:
            raise UsageError("`python` with no script: give `python script.py` or `python -m module`")
    elif not (cmd[0].endswith(".py") or cmd[0] == "-m"):
        exe = shutil.which(cmd[0]) if os.sep not in cmd[0] else (cmd[0] if os.access(cmd[0], os.X_OK) else None)
        if exe is None:
            raise UsageError(f"program not found or not executable: {cmd[0]}")
        return ProgramSpec("binary", cmd[0], tuple(cmd[1:]))
    if cmd[0] == "-m":
        if len(cmd) < 2:
            raise UsageError("`-m` needs a module name")
        return ProgramSpec("module", cmd[1], tuple(cmd[2:]))
    if cmd[0].startswith("-"):
        raise UsageError(f"python option {cmd[0]} is not supported by kernelprof run (only a script or -m module)")
    return ProgramSpec("script", cmd[0], tuple(cmd[1:]))


def check_program(spec: ProgramSpec) -> None:
    """Fail before any GPU work: a missing script or module, or a script that does not compile."""
    if spec.kind == "script":
        path = Path(spec.target)
        if not path.is_file():
            raise UsageError(f"script not found: {spec.target}")
        try:
            compile(path.read_bytes(), str(path), "exec")
        except SyntaxError as exc:
            text = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
            raise UsageError(f"{spec.target} does not compile; nothing was profiled:\n{text}") from None
    elif spec.kind == "module":
        sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(spec.target)
        except (ImportError, ValueError):
            found = None
        finally:
            sys.path.pop(0)
        if found is None:
            raise UsageError(f"module not found: {spec.target} (from {os.getcwd()})")


def _own_frames(exc: BaseException) -> str:
    """The traceback from the program's first frame on (this module's and runpy's frames dropped)."""
    tb = exc.__traceback__
    ours = {os.path.abspath(__file__), os.path.abspath(runpy.__file__)}
    while tb is not None and (os.path.abspath(tb.tb_frame.f_code.co_filename) in ours
                              or tb.tb_frame.f_code.co_filename.startswith("<frozen runpy")):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def execute(spec: ProgramSpec) -> ProgramOutcome:
    """Run the program to its end here (Python) or as a child (binary); never raises for its failures."""
    t0 = time.perf_counter()
    if spec.kind == "binary":
        child = subprocess.Popen(spec.argv)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            child.terminate()
            child.wait()
            return ProgramOutcome("interrupted", 130, None, time.perf_counter() - t0)
        return ProgramOutcome("ok" if code == 0 else "exit", code, None, time.perf_counter() - t0)
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = spec.argv
    try:
        if spec.kind == "script":
            sys.path.insert(0, str(Path(spec.target).resolve().parent))
            runpy.run_path(spec.target, run_name="__main__")
        else:
            sys.path.insert(0, os.getcwd())
            runpy.run_module(spec.target, run_name="__main__", alter_sys=True)
        return ProgramOutcome("ok", 0, None, time.perf_counter() - t0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        return ProgramOutcome("ok" if code == 0 else "exit", code, None, time.perf_counter() - t0)
    except KeyboardInterrupt:
        return ProgramOutcome("interrupted", 130, None, time.perf_counter() - t0)
    except BaseException as exc:  # the program's own failure: recorded, shown after the profile is saved
        return ProgramOutcome("raised", 1, _own_frames(exc), time.perf_counter() - t0)
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


class _RefuseNestedTorchProfiler:
    """While kernelprof traces kernels, torch.profiler cannot start a second kineto session: say so."""

    MESSAGE = ("kernelprof run is already tracing kernels with torch.profiler (CUPTI), and a second "
               "torch.profiler cannot run inside it; run with `kernelprof run --no-kernels` to use your own "
               "profiler (power and ranges are still measured)")

    def __enter__(self) -> None:
        from torch.profiler import profile

        self._cls, self._start = profile, profile.start
        message = self.MESSAGE

        def start(self_: Any) -> None:
            raise RuntimeError(message)

        profile.start = start

    def __exit__(self, *exc: Any) -> None:
        self._cls.start = self._start


@dataclass(frozen=True)
class RunOptions:
    gpus: tuple[int, ...] = (0,)
    out: Path | None = None
    kernels: bool = True
    warmup_s: float = 0.0
    idle_s: float = 0.5  # the idle baseline before the program, inside the window
    class_overrides: tuple[str, ...] = ()  # "GROUP=REGEX"


@dataclass(frozen=True)
class ProgramRun:
    outcome: ProgramOutcome
    run_path: Path
    trace_path: Path | None
    flags: tuple[str, ...]
    notes: tuple[str, ...]


def default_out(spec: ProgramSpec) -> Path:
    stem = Path(spec.target).stem if spec.kind != "module" else spec.target.replace(".", "_")
    return Path("runs") / f"run-{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json"


def profile_program(spec: ProgramSpec, opts: RunOptions) -> ProgramRun:
    """Run `spec` under the Profiler, save the run file and its Perfetto trace (see the module docstring)."""
    from kernelprof.attribution.kernel_classes import ClassOverride
    from kernelprof.methods.program_nvtx import NVTXCapture
    from kernelprof.profiler import Profiler

    check_program(spec)
    overrides = [ClassOverride.parse(s) for s in opts.class_overrides]
    python = spec.kind != "binary"
    want_kernels = opts.kernels and python
    flags, notes = [], []
    if spec.kind == "binary":
        notes.append(BINARY_NOTE)
    prof = Profiler(gpus=list(opts.gpus), kernels=want_kernels, nvtx=False)
    try:
        prof.__enter__()
    except RuntimeError as err:  # CUPTI could not start: power and ranges still work
        if not want_kernels:
            raise
        flags.append("no_cupti")
        notes.append(f"kernel tracing (CUPTI) could not start ({err}); power and ranges only")
        want_kernels = False
        prof = Profiler(gpus=list(opts.gpus), kernels=False, nvtx=False)
        prof.__enter__()
    capture = NVTXCapture(prof)
    try:
        with prof.phase(IDLE_PHASE, kind="idle"):
            prof.torch.cuda.synchronize()
            time.sleep(opts.idle_s)
        with prof.phase(PROGRAM_PHASE, kind="program"):
            if python:
                with capture, (_RefuseNestedTorchProfiler() if want_kernels else _null()):
                    outcome = execute(spec)
            else:
                outcome = execute(spec)
            prof.torch.cuda.synchronize()
    except BaseException as exc:
        prof.__exit__(type(exc), exc, exc.__traceback__)
        raise
    prof.__exit__(None, None, None)
    notes += capture.notes
    if outcome.status in ("raised", "interrupted"):
        flags.append(f"program_{outcome.status}")
    if prof.kernels_error:
        flags.append("no_cupti")
        notes.append(prof.kernels_error)
    from kernelprof.gpu.devices import gpu_facts
    from kernelprof.methods.program_summary import attribute_program

    limits = {f.uuid: f.power_limit_w for f in map(gpu_facts, opts.gpus) if f.power_limit_w}
    fits, fit_notes = attribute_program(prof.trace, prof.timeline, prof.kernels, prof.sensor_profiles,
                                        list(opts.gpus), opts.warmup_s, overrides, power_limits_w=limits)
    notes += fit_notes
    out = Path(opts.out) if opts.out else default_out(spec)
    info = {"command": spec.display(), "kind": spec.kind, "argv": spec.argv, "outcome": outcome.to_json(),
            "flags": flags, "notes": notes, "warmup_s": opts.warmup_s, "idle_s": opts.idle_s,
            "gpus": list(opts.gpus), "kernels_traced": want_kernels, "class_overrides": list(opts.class_overrides)}
    path = prof.save(out, extra={"program": info, "kernel_attribution": [f.to_json() for f in fits]})
    trace_path = None
    try:
        from kernelprof.outputs.perfetto import power_limits_by_uuid, write_chrome_trace
        from kernelprof.outputs.runfile import load_run

        trace_path = write_chrome_trace(path.with_suffix(".trace.json"), prof.trace, prof.timeline,
                                        title=f"kernelprof run: {spec.display()}"[:200], kernels=prof.kernels,
                                        power_limit_w=power_limits_by_uuid(load_run(path).environment),
                                        kernel_fits=fits)
    except Exception as err:  # the run file stands without its trace
        notes.append(f"Perfetto trace not written: {err!r}")
    return ProgramRun(outcome, path, trace_path, tuple(flags), tuple(notes))


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
