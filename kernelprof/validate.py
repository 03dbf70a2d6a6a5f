"""Argument checks every entry point makes before it needs a GPU (CLI and Python API alike).

A bad op, variant, shape, dtype, count or file is refused here with a message quoting what was
expected and what came, so that a machine without a GPU gives the same answer as one with it, and
no measurement starts on a point that cannot run. Shape grammar and dimension limits live with the
kernels (kernels/validate.py: ASCII digits, 1..2^20, head_dim in a fixed set).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kernelprof.errors import RunFileError, UsageError

KERNEL_DTYPES = ("bf16", "fp16", "fp32", "fp8")
MAX_BATCH = 4096
MAX_TOKENS = 131072          # Llama 3.1's context
MAX_TEXT_FILE_BYTES = 64 * 2**20   # grids, CSV workloads: the shipped Azure traces are 1 MB
MAX_GRID_FILE_BYTES = 1 * 2**20
MAX_SWEEP_POINTS = 10_000
MAX_WORKLOAD_REQUESTS = 1_000_000


def check_dtype(name: Any, op_name: str | None = None) -> str:
    """The canonical dtype name ('bf16', ...) of one the kernels take (for `op_name`, if given)."""
    from kernelprof.estimates.datasheets import normalize_dtype

    try:
        key = normalize_dtype(name) if isinstance(name, str) and name.strip() == name else None
    except ValueError:  # a name no dtype has (int4, float128)
        raise UsageError(f"unknown dtype {name!r}; dtype must be one of {list(KERNEL_DTYPES)}") from None
    if key not in KERNEL_DTYPES:
        raise UsageError(f"dtype must be one of {list(KERNEL_DTYPES)}, got {name!r}")
    if op_name is not None and key == "fp8":
        fp8_ops = _fp8_ops()
        if op_name not in fp8_ops:
            raise UsageError(f"{op_name} takes dtypes bf16, fp16, fp32; fp8 is for {', '.join(fp8_ops)} only, "
                             f"got {name!r}")
    return key


def _fp8_ops() -> list[str]:
    """The registry's ops whose dtypes include fp8 (users' own `fn:` cases are never among them)."""
    from kernelprof.estimates.datasheets import normalize_dtype
    from kernels.registry import get_op, list_ops

    return [n for n in list_ops() if any(normalize_dtype(d) == "fp8" for d in get_op(n).dtypes)]


def check_kernel_request(op_name: Any, variant: str | None, shape_text: str | None, dtype: Any) -> tuple[Any, str, Any, str]:
    """(op, variant, shape, dtype) after every check a measurement would fail on later
    (kernelprof.methods.ops.resolve_kernel, the one resolver)."""
    from kernelprof.methods.ops import resolve_kernel

    req = resolve_kernel(op_name, variant, shape_text, dtype)
    return req.op, req.variant, req.shape, req.dtype


def check_positive(name: str, value: Any, *, allow_zero: bool = False, upper: float | None = None) -> float:
    """A finite number > 0 (>= 0 with allow_zero), at most `upper`."""
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (value >= 0 if allow_zero else value > 0) and (upper is None or value <= upper))
    if not ok:
        bound = f" and at most {upper:g}" if upper is not None else ""
        raise UsageError(f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}{bound}, got {value!r}")
    return float(value)


def check_int_range(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UsageError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def check_llm_request(model: Any, batch: Any, input_len: Any, output_len: Any, mode: Any = "optimized") -> None:
    from kernelprof.methods.llm.config import CONFIGS

    if model not in CONFIGS:
        raise UsageError(f"model must be one of {sorted(CONFIGS)}, got {model!r}")
    check_int_range("batch", batch, 1, MAX_BATCH)
    check_int_range("input length", input_len, 1, MAX_TOKENS)
    check_int_range("output length", output_len, 1, MAX_TOKENS)
    from kernelprof.methods.llm.config import MODES

    if mode not in (*MODES, "both"):
        raise UsageError(f"mode must be one of {', '.join(MODES)} or both, got {mode!r}")


def read_text_file(path: str | Path, *, what: str, max_bytes: int = MAX_TEXT_FILE_BYTES,
                   error: type = UsageError) -> str:
    """A UTF-8 text input (a BOM is dropped), refused cleanly when missing, a folder, too big or binary."""
    path = Path(path)
    if not path.exists():
        raise error(f"no {what} at {path}")
    if not path.is_file():
        raise error(f"{what} {path} is not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise error(f"{what} {path} is {size} bytes, more than the {max_bytes} a {what} may be")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x})") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    if "\x00" in text:
        raise error(f"{what} {path} holds NUL bytes; it is not a text file")
    return text


__all__ = ["check_dtype", "check_kernel_request", "check_positive", "check_int_range", "check_llm_request",
           "read_text_file", "RunFileError"]
