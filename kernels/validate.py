"""Shape, dtype and device checks shared by the kernels' public entry points.

Every check raises `kernels.errors.ShapeError` with a message that quotes what was expected and
what came, e.g. "k must have shape [batch, kv_heads, seq_len, head_dim] = [4, 8, *, 128], got
[4, 8, 512, 64]".
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from kernels.errors import NotSupportedError, ShapeError

# True when Triton runs kernels in its CPU interpreter. Triton decides this when a kernel is
# decorated (at import), so the kernels read it once at import too and pin one small config.
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

_DTYPE_NAMES = {
    torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32",
    torch.float64: "float64", torch.int32: "int32", torch.int64: "int64",
}
if hasattr(torch, "float8_e4m3fn"):
    _DTYPE_NAMES[torch.float8_e4m3fn] = "float8_e4m3fn"


def dtype_name(dtype: torch.dtype) -> str:
    return _DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


def _fmt_dims(dims: Sequence[int | None]) -> str:
    return "[" + ", ".join("*" if d is None else str(d) for d in dims) + "]"


def check_tensor(name: str, t: object, *, dims: Sequence[str], shape: Sequence[int | None] | None = None,
                 dtypes: Sequence[torch.dtype] | None = None, device: torch.device | None = None) -> torch.Tensor:
    """Check that `t` is a tensor with len(dims) dimensions, the given sizes (None = any), one of
    `dtypes` and on `device`; return it. `dims` names the dimensions for the message."""
    layout = "[" + ", ".join(dims) + "]"
    if not isinstance(t, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(t).__name__}")
    if t.dim() != len(dims):
        raise ShapeError(f"{name} must have {len(dims)} dimensions {layout}, got shape {list(t.shape)}")
    if shape is not None:
        for want, got in zip(shape, t.shape):
            if want is not None and want != got:
                raise ShapeError(f"{name} must have shape {layout} = {_fmt_dims(shape)}, got {list(t.shape)}")
    if dtypes is not None and t.dtype not in dtypes:
        allowed = ", ".join(dtype_name(d) for d in dtypes)
        raise ShapeError(f"{name} must have dtype in ({allowed}), got {dtype_name(t.dtype)}")
    if device is not None and t.device != device:
        raise ShapeError(f"{name} must be on {device} like the other inputs, got {t.device}")
    return t


def check_same_dtype(names: Sequence[str], tensors: Sequence[torch.Tensor]) -> None:
    first = tensors[0].dtype
    for n, t in zip(names, tensors):
        if t.dtype != first:
            raise ShapeError(f"{n} must have the same dtype as {names[0]} ({dtype_name(first)}), got {dtype_name(t.dtype)}")


def check_out(out: torch.Tensor | None, shape: Sequence[int], dtype: torch.dtype, device: torch.device,
              *, last_dim_contiguous: bool = True) -> torch.Tensor:
    """Return `out` after checking it can hold the result, or a fresh empty tensor."""
    if out is None:
        return torch.empty(tuple(shape), dtype=dtype, device=device)
    if not isinstance(out, torch.Tensor):
        raise ShapeError(f"out must be a torch.Tensor or None, got {type(out).__name__}")
    if list(out.shape) != list(shape):
        raise ShapeError(f"out must have shape {list(shape)}, got {list(out.shape)}")
    if out.dtype != dtype:
        raise ShapeError(f"out must have dtype {dtype_name(dtype)}, got {dtype_name(out.dtype)}")
    if out.device != device:
        raise ShapeError(f"out must be on {device}, got {out.device}")
    if last_dim_contiguous and out.dim() and out.shape[-1] > 1 and out.stride(-1) != 1:
        raise ShapeError(f"out must have a contiguous last dimension (stride 1), got strides {list(out.stride())}")
    return out


def check_triton_device(t: torch.Tensor) -> None:
    """Triton kernels run on CUDA tensors, or on CPU tensors under TRITON_INTERPRET=1."""
    if t.device.type == "cuda":
        return
    if t.device.type == "cpu" and INTERPRET:
        return
    raise NotSupportedError(
        f"the Triton kernels need CUDA tensors (or CPU tensors with TRITON_INTERPRET=1 set before import), "
        f"got a tensor on {t.device}")


def parse_key_values(text: str, *, what: str, example: str) -> dict[str, str]:
    """Parse "b=4,h=32,s=4096,d=128,causal" into {"b": "4", ..., "causal": ""}."""
    if not isinstance(text, str) or not text.strip():
        raise ShapeError(f"{what} shape must be a non-empty string like {example!r}, got {text!r}")
    if len(text) > 200 or not text.isascii():
        raise ShapeError(f"{what} shape must be a short ASCII string like {example!r}, got {text[:60]!r}")
    out: dict[str, str] = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.lower()
        if key in out:
            raise ShapeError(f"{what} shape {text!r} gives {key!r} twice (expected e.g. {example!r})")
        out[key] = value if sep else ""
    return out


MAX_DIM = 2**20  # no dimension of these kernels is near a million; a larger one is a typo (or 10^12)


def parse_positive_int(value: str, *, key: str, text: str, example: str) -> int:
    """ASCII digits only (Python's int() also takes '٤' and '１'), 1..MAX_DIM."""
    v = value.strip()
    if not (v.isascii() and v.isdigit()):
        raise ShapeError(f"{key} in {text!r} must be a positive integer in ASCII digits, got {value!r} "
                         f"(expected e.g. {example!r})")
    n = int(v)
    if n <= 0:
        raise ShapeError(f"{key} in {text!r} must be a positive integer, got {n} (expected e.g. {example!r})")
    if n > MAX_DIM:
        raise ShapeError(f"{key} in {text!r} must be at most {MAX_DIM} (2^20), got {n}")
    return n


HEAD_DIMS = (16, 32, 64, 80, 96, 128, 160, 192, 256)  # what attention kernels (Triton, SDPA backends) take


def check_head_dim(d: int, *, text: str) -> int:
    if d not in HEAD_DIMS:
        raise ShapeError(f"d (head_dim) in {text!r} must be one of {list(HEAD_DIMS)}, got {d}")
    return d


def parse_bool(value: str, *, key: str, text: str) -> bool:
    v = value.lower()
    if v in ("", "1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ShapeError(f"{key} in {text!r} must be a flag (true/false/1/0) or bare, got {value!r}")
