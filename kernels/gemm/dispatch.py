"""Which tiles and split-K the tiled GEMM runs with for skinny M: a tuned table, else a rule.

`choose_gemm_config(m, n, k, dtype_name, num_sms, gpu_name=...)` returns a `GemmConfig`, or None
for "let the autotuner choose" (M > 64 with no table entry: the big-tile autotuned path). The table
(`kernels/gemm/tuned_h200.json`, written by benchmarks/gemm_tune.py) is keyed by GPU name and
"m<bucket>-n<N>-k<K>-<dtype>", M rounded up to 8, 16, 32, 64, then powers of two. Pure Python.

The rule for M <= 64 (decode GEMMs: a few tokens against a weight matrix; reasoned before any H200
measurement, kernels/NOTES.md has the prediction): the kernel only has to stream B (K x N) once at
HBM speed.
- BLOCK_M is the smallest tl.dot row count that holds M (16, 32 or 64); BLOCK_N 64 and BLOCK_K 128
  (64 for fp32) keep one pipeline stage at 20-32 KB, 4 stages, 4 warps.
- Tiles alone (M / BLOCK_M x N / 64) number 64 for a 4096-wide output and 96 for 6144: fewer
  programs than the 132 SMs of an H200, so a third of the GPU would not stream. Split K into the
  fewest chunks that give every SM a program (tiles x splits >= num_sms), each chunk at least 512
  deep (4 BLOCK_K steps, so the pipeline fills) and at most 8 chunks. Partial sums go to an fp32
  workspace [splits, M, N] that a second kernel adds up in a fixed order (no atomics: the result
  does not depend on scheduling), costing 2 x splits x M x N x 4 bytes (3 MB at M=64, N=4096,
  3 splits, against 117 MB of weights) and a launch (~2.5 us).
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).resolve().with_name("tuned_h200.json")
TABLE_VERSION = 1
SKINNY_M = 64
MIN_K_PER_SPLIT = 512
MAX_SPLIT_K = 8
_TILE_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class GemmConfig:
    """A launch of the tiled kernel: tiles, grouped order, warps, stages, and split_k chunks of K
    (1 = no workspace, C written directly). `source` 'table', 'rule' or 'caller'; `note` says why
    the rule was used, when it was."""

    block_m: int
    block_n: int = 64
    block_k: int = 128
    group_m: int = 1
    num_warps: int = 4
    num_stages: int = 4
    split_k: int = 1
    source: str = "rule"
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GemmConfig:
        return cls(**{f: d[f] for f in cls.__dataclass_fields__ if f in d})

    def problems(self) -> list[str]:
        out = []
        for name in ("block_m", "block_n", "block_k", "group_m", "num_warps", "num_stages", "split_k"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                out.append(f"{name} must be a positive integer, got {v!r}")
        if out:
            return out
        for name in ("block_m", "block_n", "block_k"):
            if getattr(self, name) not in _TILE_SIZES:
                out.append(f"{name} must be one of {_TILE_SIZES} (tl.dot needs >= 16), got {getattr(self, name)}")
        if self.num_warps not in (1, 2, 4, 8, 16):
            out.append(f"num_warps must be 1, 2, 4, 8 or 16, got {self.num_warps}")
        if self.split_k > 64:
            out.append(f"split_k must be <= 64, got {self.split_k}")
        return out


def k_per_split(k: int, split_k: int, block_k: int) -> tuple[int, int]:
    """(depth of each K chunk rounded up to whole BLOCK_K steps, chunks that leaves)."""
    depth = -(-(-(-k // split_k)) // block_k) * block_k
    return depth, -(-k // depth)


def _tile_m(m: int) -> int:
    return 16 if m <= 16 else 32 if m <= 32 else 64


def rule_config(m: int, n: int, k: int, elem_bytes: int, num_sms: int, note: str = "") -> GemmConfig | None:
    """The skinny-M rule (module docstring); None for M > 64 (the autotuned big tiles)."""
    if m > SKINNY_M:
        return None
    bm, bn = _tile_m(m), 64
    bk = 64 if elem_bytes >= 4 else 128
    tiles = -(-m // bm) * -(-n // bn)
    split = 1
    while (tiles * split < num_sms and split < MAX_SPLIT_K
           and k_per_split(k, split + 1, bk)[0] >= MIN_K_PER_SPLIT):
        split += 1
    split = k_per_split(k, split, bk)[1]
    return GemmConfig(block_m=bm, block_n=bn, block_k=bk, group_m=1, num_warps=4, num_stages=4,
                      split_k=split, source="rule", note=note)


def shape_bucket(m: int, n: int, k: int, dtype_name: str) -> str:
    mb = 8 if m <= 8 else 1 << (m - 1).bit_length()
    return f"m{mb}-n{n}-k{k}-{dtype_name}"


@dataclass(frozen=True)
class TunedTable:
    entries: dict[str, dict[str, GemmConfig]]
    path: str
    note: str = ""


def parse_table(doc: Any, path: str) -> TunedTable:
    if not isinstance(doc, dict) or doc.get("version") != TABLE_VERSION or not isinstance(doc.get("gpus"), dict):
        return TunedTable({}, path, f"tuned table {path} is not a version-{TABLE_VERSION} table: using the rule")
    entries: dict[str, dict[str, GemmConfig]] = {}
    bad: list[str] = []
    for gpu, block in doc["gpus"].items():
        rows = block.get("entries") if isinstance(block, dict) else None
        for bucket, row in (rows.items() if isinstance(rows, dict) else ()):
            try:
                cfg = replace(GemmConfig.from_json(row), source="table", note="")
            except TypeError as exc:
                bad.append(f"{gpu}/{bucket}: {exc}")
                continue
            if cfg.problems():
                bad.append(f"{gpu}/{bucket}: {cfg.problems()[0]}")
                continue
            entries.setdefault(gpu, {})[bucket] = cfg
    note = f"tuned table {path}: skipped {len(bad)} invalid entries ({'; '.join(bad[:3])})" if bad else ""
    return TunedTable(entries, path, note)


def load_table(path: str | Path | None = None) -> TunedTable:
    p = Path(path) if path is not None else TABLE_PATH
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        return TunedTable({}, str(p), f"no tuned table at {p}: using the rule")
    except (OSError, ValueError) as exc:
        return TunedTable({}, str(p), f"tuned table {p} unreadable or not JSON ({exc}): using the rule")
    return parse_table(doc, str(p))


@functools.lru_cache(maxsize=4)
def default_table() -> TunedTable:
    return load_table()


def choose_gemm_config(m: int, n: int, k: int, dtype_name: str, num_sms: int, *, gpu_name: str | None = None,
                       table: TunedTable | None = None) -> GemmConfig | None:
    """The table's entry for (gpu_name, bucket), else `rule_config` (None: autotune). dtype_name:
    'bfloat16', 'float16' or 'float32'. The table's split_k is re-rounded to this K."""
    tbl = default_table() if table is None else table
    hit = tbl.entries.get(gpu_name, {}).get(shape_bucket(m, n, k, dtype_name)) if gpu_name else None
    if hit is not None:
        return replace(hit, split_k=k_per_split(k, hit.split_k, hit.block_k)[1])
    note = tbl.note or (f"no tuned entry for {gpu_name!r} at {shape_bucket(m, n, k, dtype_name)}: using the rule"
                        if gpu_name else "no GPU name given: using the rule")
    return rule_config(m, n, k, 4 if dtype_name == "float32" else 2, num_sms, note=note)
