"""Nsight Compute (`ncu`) as a subprocess: find it, run a target under it, parse its raw CSV page.

kernelprof never touches clocks: every command passes `--clock-control none`, so counters are read
at whatever clocks the board runs (ncu's default would lock them to base). `--cache-control all`
(ncu's default, spelled out) flushes the caches before every replay pass, so DRAM byte counts are
cold-cache figures: every input byte has to come from DRAM at least once.

ncu's CSV (`--csv --page raw`) is one header row, one units row, then one row per profiled kernel;
numbers carry thousands separators ("1,024"). Lines that are not CSV (ncu's "==PROF==" and
"==WARNING==" lines, anything the target prints) may come before and after it.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable

from kernelprof.errors import KernelprofError

NVTX_RANGE = "kernelprof_target"
ENV_NCU = "KERNELPROF_NCU"  # path to ncu when it is not on the PATH


class NcuError(KernelprofError):
    """Nsight Compute is missing, was refused the counters, failed, or profiled nothing."""

    exit_code = 8


class NcuNotFoundError(NcuError):
    pass


class NcuPermissionError(NcuError):
    pass


class NoKernelsProfiledError(NcuError):
    pass


@dataclass(frozen=True)
class NcuKernel:
    """One profiled kernel launch: ncu's row, values as floats (None for 'n/a') in ncu's units."""

    id: int
    name: str
    grid: str
    block: str
    values: dict[str, float | None]
    units: dict[str, str] = field(default_factory=dict)
    nvtx: str = ""

    def value(self, metric: str) -> float | None:
        """A metric in SI base units (bytes, seconds, counts; percentages stay percent)."""
        v = self.values.get(metric)
        if v is None:
            return None
        return v * unit_scale(self.units.get(metric, ""))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "grid": self.grid, "block": self.block, "nvtx": self.nvtx,
                "values": dict(self.values), "units": dict(self.units)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "NcuKernel":
        return cls(id=int(d["id"]), name=d["name"], grid=d.get("grid", ""), block=d.get("block", ""),
                   values=dict(d.get("values", {})), units=dict(d.get("units", {})), nvtx=d.get("nvtx", ""))


# Factors to SI base units for the units ncu prints. Durations: ncu's raw page says "ns" for
# gpu__time_duration even with --print-units base; the scaled spellings cover captures without it.
_TIME_UNITS = {"ns": 1e-9, "nsecond": 1e-9, "us": 1e-6, "usecond": 1e-6, "ms": 1e-3, "msecond": 1e-3,
               "s": 1.0, "second": 1.0}
_PREFIXES = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_PREFIXABLE = ("byte", "inst", "cycle", "warp", "sector", "request", "thread", "block", "register")


def unit_scale(unit: str) -> float:
    """Factor that turns a value in `unit` into SI base units: 'Mbyte' -> 1e6, 'usecond' -> 1e-6."""
    unit = unit.strip()
    if unit in _TIME_UNITS:
        return _TIME_UNITS[unit]
    if unit[:1] in _PREFIXES and unit[1:] in _PREFIXABLE:
        return _PREFIXES[unit[0]]
    if unit.endswith("/second") or unit.endswith("/s"):  # rates: hz, byte/second, ...
        head = unit.split("/")[0]
        if head[:1] in _PREFIXES and head[1:] in _PREFIXABLE + ("",):
            return _PREFIXES[head[0]]
    if unit in ("Khz", "kHz"):
        return 1e3
    if unit in ("Mhz", "MHz"):
        return 1e6
    if unit in ("Ghz", "GHz"):
        return 1e9
    return 1.0


_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][-+]?\d+)?$")


def parse_number(text: str) -> float | str | None:
    """'1,024' -> 1024.0; '13,134,976.40' -> 13134976.4; '' / 'n/a' -> None; other text unchanged."""
    t = text.strip()
    if t == "" or t.lower() in ("n/a", "na", "nan", "-"):
        return None
    if _NUMBER.match(t) and any(c.isdigit() for c in t):
        return float(t.replace(",", ""))
    return t


def _csv_block(text: str) -> list[str]:
    """The CSV lines of ncu's output: from the header row ('"ID","Process ID",...') on, keeping
    only lines that look like CSV rows (start with a quote); ncu's ==PROF== lines and the target's
    own output are skipped wherever they fall."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID","')), None)
    if start is None:
        return []
    return [line for line in lines[start:] if line.startswith('"')]


def parse_raw_csv(text: str) -> list[NcuKernel]:
    """Every kernel row of an `ncu --csv --page raw` output (empty if there is no CSV block)."""
    rows = list(csv.reader(_csv_block(text)))
    if not rows:
        return []
    header = rows[0]
    units_row: list[str] = []
    body = rows[1:]
    # The units row has an empty ID; kernel rows have an integer ID.
    if body and not body[0][0].strip().isdigit():
        units_row, body = body[0], body[1:]
    col = {name: i for i, name in enumerate(header)}
    kernels = []
    for row in body:
        if len(row) != len(header) or not row[0].strip().isdigit():
            continue  # a row cut short (target killed mid-write) or a stray line: not a kernel
        values: dict[str, float | None] = {}
        units: dict[str, str] = {}
        for name, i in col.items():
            if "__" not in name:  # metric names have a double underscore; the rest are row labels
                continue
            parsed = parse_number(row[i])
            if isinstance(parsed, str):
                continue  # text attributes (device name, cache config): not a counter
            values[name] = parsed
            if units_row and units_row[i]:
                units[name] = units_row[i]

        def text(name: str) -> str:
            return row[col[name]].strip() if name in col else ""

        nvtx = next((row[i].strip() for name, i in col.items() if name.startswith("thread Domain")), "")
        kernels.append(NcuKernel(id=int(row[0]), name=text("Kernel Name"), grid=text("Grid Size"),
                                 block=text("Block Size"), values=values, units=units, nvtx=nvtx))
    return kernels


# ---------------------------------------------------------------------------------------------
# Diagnosing a run from its text output

PERMISSION_MARK = "ERR_NVGPUCTRPERM"
NO_KERNELS_MARK = "No kernels were profiled"


def diagnose(output: str, *, returncode: int, command: str, kernels_found: bool = False) -> None:
    """Raise the NcuError that ncu's text output shows, if any. With kernel rows parsed, only a
    permission refusal is fatal: other ==ERROR== lines (a child process, a later kernel) leave the
    profiled kernels valid, and the caller keeps them as messages."""
    if PERMISSION_MARK in output:
        raise NcuPermissionError(
            "ncu was refused access to the GPU performance counters (ERR_NVGPUCTRPERM): run as root "
            "(sudo), or let all users profile by loading the driver with "
            "'options nvidia NVreg_RestrictProfilingToAdminUsers=0' (a file in /etc/modprobe.d/, then "
            "reboot); in a container, start it with --cap-add=SYS_ADMIN. "
            "See https://developer.nvidia.com/ERR_NVGPUCTRPERM")
    if kernels_found:
        return
    if NO_KERNELS_MARK in output:
        raise NoKernelsProfiledError(
            f"ncu profiled no kernels: none was launched inside the NVTX range '{NVTX_RANGE}' "
            "(the variant may run on the CPU, the target may have failed before the range, or an "
            f"older ncu needs the range given differently); ncu said: {_marked_lines(output, '==WARNING==') or '-'}")
    errors = _marked_lines(output, "==ERROR==")
    if errors:
        raise NcuError(f"ncu failed: {errors} (command: {command})")


def _marked_lines(output: str, mark: str, limit: int = 3) -> str:
    found = [line.strip() for line in output.splitlines() if line.strip().startswith(mark)]
    return " | ".join(found[:limit])


# ---------------------------------------------------------------------------------------------
# Running ncu

def find_ncu(explicit: str | None = None) -> str:
    """Path of the ncu executable: `explicit`, else $KERNELPROF_NCU, else ncu on the PATH."""
    candidate = explicit or os.environ.get(ENV_NCU)
    if candidate:
        path = shutil.which(candidate)
        if path is None:
            raise NcuNotFoundError(f"ncu not found at {candidate!r} (from --ncu or ${ENV_NCU}); "
                                   "give the path of an executable ncu")
        return path
    path = shutil.which("ncu")
    if path is None:
        raise NcuNotFoundError(
            "Nsight Compute's command-line profiler `ncu` is not on the PATH: install Nsight Compute "
            "(it ships with the CUDA toolkit, e.g. /usr/local/cuda/bin/ncu) and add it to the PATH, "
            f"or give its path with --ncu or ${ENV_NCU}")
    return path


def ncu_version(ncu: str) -> str:
    """ncu's version line ('Version 2025.3.1.0 (build ...)'), or 'unknown'."""
    try:
        out = subprocess.run([ncu, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    line = next((ln.strip() for ln in out.splitlines() if ln.strip().startswith("Version")), "")
    return line or (out.strip().splitlines()[-1] if out.strip() else "unknown")


def build_command(ncu: str, metrics: list[str], target: list[str], *, cache_control: str = "all") -> list[str]:
    """The ncu command line: one NVTX range, raw CSV in base units, clocks left alone."""
    if cache_control not in ("all", "none"):
        raise ValueError(f"cache_control must be 'all' or 'none', got {cache_control!r}")
    return [ncu,
            "--clock-control", "none",          # never lock or reset clocks
            "--cache-control", cache_control,   # 'all': flush caches before every replay pass
            "--target-processes", "all",
            "--nvtx", "--nvtx-include", f"{NVTX_RANGE}/",   # push/pop range of that name
            "--csv", "--page", "raw", "--print-units", "base", "--print-kernel-base", "function",
            "--metrics", ",".join(metrics),
            *target]


@dataclass(frozen=True)
class NcuRun:
    """What one ncu invocation produced."""

    command: list[str]
    returncode: int
    output: str          # stdout then stderr, as text
    kernels: list[NcuKernel]
    wall_s: float
    messages: list[str] = field(default_factory=list)  # ncu's ==ERROR== / ==WARNING== lines


def run_ncu(command: list[str], *, env: dict[str, str] | None = None, timeout_s: float = 600.0,
            precheck: Callable[[], None] | None = None) -> NcuRun:
    """Run an ncu command line, parse its kernels, and raise what its output shows when it
    profiled none (NoKernelsProfiledError, NcuPermissionError, NcuError).

    `precheck` runs after ncu exits and before its output is diagnosed: the target's own error
    (written to a side file) says more than ncu's "No kernels were profiled" that follows it."""
    import time

    t0 = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise NcuNotFoundError(f"could not start {command[0]!r}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise NcuError(f"ncu did not finish within {timeout_s:.0f} s (raise --timeout-s, or profile a "
                       "smaller shape: ncu replays the kernel once per pass)") from exc
    wall_s = time.perf_counter() - t0
    output = (proc.stdout or "") + ("\n" + proc.stderr if proc.stderr else "")
    printable = " ".join(command)
    if precheck is not None:
        precheck()
    kernels = parse_raw_csv(proc.stdout or "")
    diagnose(output, returncode=proc.returncode, command=printable, kernels_found=bool(kernels))
    if not kernels:
        raise NoKernelsProfiledError(
            f"ncu returned no kernel rows (exit code {proc.returncode}); the target may have failed "
            f"before launching inside the NVTX range '{NVTX_RANGE}'. Last output: "
            f"{' | '.join(output.strip().splitlines()[-3:]) or '(none)'}")
    messages = [ln.strip() for ln in output.splitlines() if ln.strip().startswith(("==ERROR==", "==WARNING=="))]
    return NcuRun(command=command, returncode=proc.returncode, output=output, kernels=kernels, wall_s=wall_s,
                  messages=messages)
