"""Sweeps: a grid of (op, variant, shape, dtype) points, measured one by one and streamed to JSONL.

Each finished point is appended to the JSONL file (kernelprof/outputs/jsonl_store.py) as one
line, flushed and fsynced, so a crash loses at most the point in flight; `resume=True` skips the
points already recorded as done, after checking that the file was measured under the same
configuration. An
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
import math
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from kernelprof.errors import BUG_HINT, InternalError, KernelprofError, RunFileError, UsageError, is_internal_bug
from kernelprof.outputs.jsonl_store import Appender, StoreRead, prepare, read_store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SWEEP_KEYS = {"name", "op", "fn", "variants", "dtypes", "shapes", "grid"}  # fn: a user's MODULE:FUNCTION


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
    if not isinstance(grid, dict):
        raise UsageError(f"[sweep.grid] must be a table of lists, got {grid!r}")
    keys = list(grid)
    for k, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"sweep.grid.{k} must be a non-empty list, got {values!r}")
        bad = [v for v in values if not (isinstance(v, int) and v >= 0)]  # bool is an int: a flag
        if bad:
            raise UsageError(f"sweep.grid.{k} must hold whole numbers (or true/false for a flag), got {bad[0]!r}")
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
    for k in ("variants", "dtypes", "shapes"):
        v = doc.get(k, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise UsageError(f"{source}: sweep.{k} must be a list of strings, got {v!r}")
    if not isinstance(doc.get("name", ""), str):
        raise UsageError(f"{source}: sweep.name must be a string, got {doc['name']!r}")
    from kernels import get_op
    from kernelprof.methods.user_case import user_op
    from kernelprof.validate import MAX_SWEEP_POINTS, check_dtype

    if "fn" in doc:
        if not isinstance(doc["fn"], str):
            raise UsageError(f"{source}: sweep.fn must be a string MODULE:FUNCTION, got {doc['fn']!r}")
        op = user_op(doc["fn"], doc.get("variants"), probe=False)
    else:
        if not isinstance(doc["op"], str):
            raise UsageError(f"{source}: sweep.op must be gemm, attention or decode, got {doc['op']!r}")
        op = get_op(doc["op"])
    variants = doc.get("variants") or list(op.variants)
    bad = [v for v in variants if v not in op.variants]
    if bad:
        raise UsageError(f"{source}: unknown variant(s) {bad} for {op.name}; available: {sorted(op.variants)}")
    dtypes = [check_dtype(d, op.name) for d in (doc.get("dtypes") or ["bf16"])]
    n_grid = math.prod(len(v) if isinstance(v, list) else 1 for v in doc.get("grid", {}).values()) \
        if isinstance(doc.get("grid"), dict) else 0
    n_points = (len(doc.get("shapes", [])) + n_grid) * len(dtypes) * len(variants)
    if n_points > MAX_SWEEP_POINTS:
        raise UsageError(f"{source}: the grid expands to {n_points} points, more than {MAX_SWEEP_POINTS}; split it")
    shapes = list(doc.get("shapes", [])) + (_grid_shapes(doc["grid"]) if "grid" in doc else [])
    if not shapes:
        raise UsageError(f"{source}: [sweep] needs 'shapes' or a [sweep.grid]")
    for s in shapes:
        op.parse_shape(s)  # fail now, not an hour into the sweep
    points = tuple(SweepPoint(op.name, v, s, d) for s in shapes for d in dtypes for v in variants)
    return SweepSpec(name=doc.get("name", op.name.replace(":", "-")), points=points)


def load_sweep_toml(path: str | Path) -> SweepSpec:
    from kernelprof.validate import MAX_GRID_FILE_BYTES, read_text_file

    path = Path(path)
    text = read_text_file(path, what="sweep grid", max_bytes=MAX_GRID_FILE_BYTES)
    try:
        doc = tomllib.loads(text)
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


def _validate_resumable(rec: dict[str, Any], where: str) -> None:
    """What a resume needs of a sweep record: string point fields and, when ok, a result object."""
    for k in ("op", "variant", "shape", "dtype"):
        if k in rec and not isinstance(rec[k], str):
            raise RunFileError(f"{where}: \"{k}\" must be a string, got {rec[k]!r}; the file is corrupt")
    if "input_bin" in rec:
        raise RunFileError(f"{where} is a workload bin, not a sweep point; use `kernelprof report` on it")
    if rec["status"] == "ok" and not isinstance(rec.get("result"), dict):
        raise RunFileError(f"{where}: an ok point must hold a result object; the file is corrupt")


def validate_sweep_record(rec: dict[str, Any], where: str) -> None:
    """A sweep point's record as the renderers read it: the point's fields are strings; an ok one
    holds a result with a measurement and estimates."""
    for k in ("op", "variant", "shape", "dtype"):
        if k in rec and not isinstance(rec[k], str):
            raise RunFileError(f"{where}: \"{k}\" must be a string, got {rec[k]!r}; the file is corrupt")
    if "input_bin" in rec:
        raise RunFileError(f"{where} is a workload bin, not a sweep point; use `kernelprof report` on it")
    if rec["status"] == "ok":
        res = rec.get("result")
        if not isinstance(res, dict) or not isinstance(res.get("measurement"), dict) \
                or not isinstance(res.get("estimates"), list):
            raise RunFileError(f"{where}: an ok point must hold a result with its measurement and estimates; "
                               "the file is corrupt")


def read_sweep(jsonl: Path) -> StoreRead:
    return read_store(jsonl, validate=validate_sweep_record)


def read_done(jsonl: Path, *, warn_user: bool = True) -> dict[str, dict[str, Any]]:
    """Records already in a sweep's JSONL, by point key (jsonl_store's rules: strict lines, a torn
    tail kept when whole, an ok record never hidden by a later failed one); warnings go to stderr."""
    read = read_sweep(Path(jsonl))
    if warn_user:
        read.emit_warnings()
    return read.records


def sweep_config(spec: SweepSpec, measure: dict[str, Any] | None = None, gpu: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """What a sweep's points are measured under; a resume must match it (gpu may be left out before
    the GPU is opened: only the fields given are compared)."""
    from kernelprof import __version__

    ops = sorted({p.op for p in spec.points})
    cfg: dict[str, Any] = {"kind": "sweep", "sweep": spec.name, "op": ",".join(ops), "kernelprof": __version__}
    if measure is not None:
        cfg["measure"] = measure
    if gpu is not None:
        cfg.update(gpu)
    return cfg


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:
        pass
    return "out of memory" in str(exc).lower()


def run_sweep(spec: SweepSpec, measure: Callable[[SweepPoint], dict[str, Any]], jsonl: str | Path, *,
              resume: bool = False, new_file: bool = False, config: dict[str, Any] | None = None,
              on_point: Callable[[SweepPoint, dict[str, Any]], None] | None = None,
              ) -> list[dict[str, Any]]:
    """Measure every point not already done, appending one JSON line per point as it finishes.

    Without `resume`, an existing file is an error (never silently overwritten or mixed); with it,
    the file's records must carry `config` (default `sweep_config(spec)`) or the resume stops.
    A point that fails (out of memory, a kernel that cannot take it) is recorded as failed; a bug in
    kernelprof itself stops the sweep with InternalError (the point is not recorded, so a resume
    retries it). Returns every record of the sweep, old and new, in grid order.
    """
    jsonl = Path(jsonl)
    config = sweep_config(spec) if config is None else config
    read = prepare(jsonl, config, resume=resume, new_file=new_file, validate=_validate_resumable)
    read.emit_warnings("kernelprof sweep")
    done = read.records
    records = []
    with Appender(jsonl, config) as store:
        for point in spec.points:
            prev = done.get(point.key)
            if prev is not None and prev.get("status") == "ok":
                records.append(prev)
                if on_point:
                    on_point(point, prev)
                continue
            rec: dict[str, Any] = {"sweep": spec.name, "key": point.key, **asdict(point)}
            try:
                rec["result"] = measure(point)
                rec["status"] = "ok"
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
                if is_internal_bug(exc) and not _is_oom(exc):
                    raise InternalError(f"point {point.key} hit {type(exc).__name__}: {exc}; {BUG_HINT}. "
                                        f"The finished points are in {jsonl}") from exc
                rec["status"] = "failed"
                rec["error"] = "out of memory" if _is_oom(exc) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, KernelprofError) and not _is_oom(exc):
                    rec["traceback"] = traceback.format_exc(limit=5)
                _free_gpu_memory()
            rec = store.append(rec)
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
