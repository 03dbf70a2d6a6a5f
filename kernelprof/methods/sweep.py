"""Sweeps: a grid of (op, variant, shape, dtype) points, measured one by one and streamed to JSONL.

Each finished point is appended to the JSONL file as one line and flushed at once, so a crash
loses at most the point in flight; `resume=True` skips the points already recorded as done. An
out-of-memory point, or one a kernel cannot take, is recorded as failed and the sweep goes on.

Grids come from built-in suites or a TOML file:

    [sweep]
    op = "attention"
    variants = ["triton", "sdpa-flash"]
    dtypes = ["bf16"]
    shapes = ["b=4,h=32,s=1024,d=128,causal"]     # explicit shapes, and/or a product:
    [sweep.grid]
    b = [4]
    h = [32]
    s = [1024, 2048, 4096]
    d = [128]
    causal = [true]
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from kernelprof.errors import KernelprofError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SWEEP_KEYS = {"name", "op", "fn", "variants", "dtypes", "shapes", "grid"}  # fn: a user's MODULE:FUNCTION
JSONL_VERSION = 1


@dataclass(frozen=True)
class SweepPoint:
    op: str
    variant: str
    shape: str
    dtype: str

    @property
    def key(self) -> str:
        return f"{self.op}/{self.variant}/{self.dtype}/{self.shape}"


@dataclass(frozen=True)
class SweepSpec:
    name: str
    points: tuple[SweepPoint, ...]


def _grid_shapes(grid: dict[str, list[Any]]) -> list[str]:
    keys = list(grid)
    for k, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"sweep.grid.{k} must be a non-empty list, got {values!r}")
    shapes = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        parts = []
        for k, v in zip(keys, combo):
            if isinstance(v, bool):
                if v:
                    parts.append(k)  # a flag such as "causal"
            else:
                parts.append(f"{k}={v}")
        shapes.append(",".join(parts))
    return shapes


def spec_from_dict(doc: dict[str, Any], *, source: str = "sweep") -> SweepSpec:
    """Validate a parsed grid (the [sweep] table) and expand it to points."""
    unknown = set(doc) - SWEEP_KEYS
    if unknown:
        raise UsageError(f"{source}: unknown key(s) {sorted(unknown)} in [sweep]; allowed: {sorted(SWEEP_KEYS)}")
    if ("op" in doc) == ("fn" in doc):
        raise UsageError(f"{source}: [sweep] needs 'op' (a built-in op) or 'fn' (MODULE:FUNCTION), one of them")
    from kernels import get_op
    from kernelprof.methods.user_case import user_op

    op = user_op(doc["fn"], doc.get("variants"), probe=False) if "fn" in doc else get_op(doc["op"])
    variants = doc.get("variants") or list(op.variants)
    bad = [v for v in variants if v not in op.variants]
    if bad:
        raise UsageError(f"{source}: unknown variant(s) {bad} for {op.name}; available: {sorted(op.variants)}")
    dtypes = doc.get("dtypes") or ["bf16"]
    shapes = list(doc.get("shapes", [])) + (_grid_shapes(doc["grid"]) if "grid" in doc else [])
    if not shapes:
        raise UsageError(f"{source}: [sweep] needs 'shapes' or a [sweep.grid]")
    for s in shapes:
        op.parse_shape(s)  # fail now, not an hour into the sweep
    points = tuple(SweepPoint(op.name, v, s, d) for s in shapes for d in dtypes for v in variants)
    return SweepSpec(name=doc.get("name", op.name.replace(":", "-")), points=points)


def load_sweep_toml(path: str | Path) -> SweepSpec:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"no sweep file at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc
    extra = set(doc) - {"sweep"}
    if extra or "sweep" not in doc:
        raise UsageError(f"{path}: expected exactly one [sweep] table, found {sorted(doc)}")
    return spec_from_dict(doc["sweep"], source=str(path))


BUILTIN_SUITES: dict[str, dict[str, Any]] = {
    "attention": {"op": "attention", "variants": ["triton", "sdpa-flash", "sdpa-cudnn"], "dtypes": ["bf16"],
                  "grid": {"b": [4], "h": [32], "s": [1024, 2048, 4096, 8192], "d": [128], "causal": [True]}},
    "decode": {"op": "decode", "variants": ["triton-splitk", "sdpa"], "dtypes": ["bf16"],
               "grid": {"b": [1, 16, 64], "h": [32], "kv": [8], "ctx": [1024, 8192], "d": [128]}},
    "gemm": {"op": "gemm", "variants": ["triton", "cublas"], "dtypes": ["bf16"],
             "shapes": ["1024x1024x1024", "2048x2048x2048", "4096x4096x4096", "8192x8192x8192",
                        "16x4096x4096", "128x4096x4096"]},
}


def builtin_suite(name: str) -> SweepSpec:
    if name not in BUILTIN_SUITES:
        raise UsageError(f"unknown suite {name!r}; built-in suites: {sorted(BUILTIN_SUITES)}")
    return spec_from_dict(dict(BUILTIN_SUITES[name], name=name), source=f"suite {name}")


def read_done(jsonl: Path) -> dict[str, dict[str, Any]]:
    """Records already in a sweep's JSONL, by point key. A torn last line (a crash mid-write) is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if not jsonl.exists():
        return done
    lines = jsonl.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                continue
            raise KernelprofError(f"{jsonl}: line {i + 1} is not JSON; the file is corrupt")
        if "key" in rec:
            done[rec["key"]] = rec
    return done


def _drop_torn_tail(jsonl: Path) -> None:
    """Cut a last line that a crash left half-written, so new records follow whole ones."""
    if not jsonl.exists():
        return
    data = jsonl.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1  # 0 when the only line is torn
    with jsonl.open("r+b") as f:
        f.truncate(cut)


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:
        pass
    return "out of memory" in str(exc).lower()


def run_sweep(spec: SweepSpec, measure: Callable[[SweepPoint], dict[str, Any]], jsonl: str | Path, *,
              resume: bool = False, on_point: Callable[[SweepPoint, dict[str, Any]], None] | None = None,
              ) -> list[dict[str, Any]]:
    """Measure every point not already done, appending one JSON line per point as it finishes.

    Without `resume`, an existing file is an error (never silently overwritten or mixed).
    Returns every record of the sweep, old and new, in grid order.
    """
    jsonl = Path(jsonl)
    if jsonl.exists() and not resume:
        raise UsageError(f"{jsonl} exists: pass --resume to continue that sweep, or choose another --out")
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    done = read_done(jsonl) if resume else {}
    if resume:
        _drop_torn_tail(jsonl)
    records = []
    with jsonl.open("a") as f:
        for point in spec.points:
            prev = done.get(point.key)
            if prev is not None and prev.get("status") == "ok":
                records.append(prev)
                if on_point:
                    on_point(point, prev)
                continue
            rec: dict[str, Any] = {"v": JSONL_VERSION, "sweep": spec.name, "key": point.key, **asdict(point)}
            try:
                rec["result"] = measure(point)
                rec["status"] = "ok"
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
                rec["status"] = "failed"
                rec["error"] = "out of memory" if _is_oom(exc) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, KernelprofError) and not _is_oom(exc):
                    rec["traceback"] = traceback.format_exc(limit=5)
                _free_gpu_memory()
            from kernelprof.outputs.runfile import to_jsonable

            f.write(json.dumps(to_jsonable(rec), allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
            records.append(rec)
            if on_point:
                on_point(point, rec)
    return records


def _free_gpu_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def points_of(records: Iterable[dict[str, Any]], status: str = "ok") -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == status]
