"""Which split count and tiles the decode kernel runs with: a tuned table, else an SM-count rule.

`choose_decode_config(batch, q_heads, kv_heads, max_len, head_dim, num_sms, gpu_name=...)` returns a
`DecodeConfig`. The table (`kernels/decode/tuned_h200.json`, written by benchmarks/decode_tune.py) is
keyed by GPU name and a shape bucket; a shape whose bucket the table lacks, a GPU the table does
not know, or a missing or unreadable table fall back to `rule_config`, and the config's `note`
says why. Pure Python (no torch, no triton): the dispatcher runs on the host once per shape.

The rule (reasoned before any H200 measurement; kernels/NOTES.md has the prediction):
- The chunk kernel is memory-bound; one program per (sequence, KV head, chunk) streams its chunk of
  K and V. A program with BLOCK_N=128, 3 stages, 4 warps holds ~192 KB of shared memory, so one
  program per SM is resident: programs run in waves of num_sms.
- Streaming time is the larger of HBM time (all K and V at num_sms x 30 GB/s, ~4 TB/s on an H200)
  and SM time (waves x one chunk at 30 GB/s: a program is assumed to pull no more than its SM's
  share of HBM, the conservative end; on the H100 8 lone programs pulled 52 GB/s each). Add a
  program start-up per wave (~1 us) and, when split, the merge: fp32 partials written and read
  (batch*q_heads*splits*(head_dim+1)*4 bytes each way) and a second launch (~2.5 us).
- Chunks are at least 256 tokens (128 KB of K+V at d=128 bf16: a shorter one is dominated by its
  start-up), at most 256 splits, and multiples of BLOCK_N.
The fewest splits whose modelled time is within 3% of the best are chosen (more programs buy
little and cost partials). B1 ctx 32k with 8 KV heads
on 132 SMs: 16 splits (128 programs, one wave, chunk 2048); B16 x 8 KV heads: no split (128
programs already fill a wave).
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).resolve().with_name("tuned_h200.json")
TABLE_VERSION = 1

MIN_CHUNK_TOKENS = 256
MAX_SPLITS = 256
BLOCK_NS = (16, 32, 64, 128, 256)
NUM_WARPS = (1, 2, 4, 8, 16)
# How split chunks are combined: "kernel", a second launch (measured, the default); "fused", the last
# chunk program of each (sequence, KV head) to finish merges them (one launch fewer; a tuner candidate,
# adopted per bucket only where the table measured it faster).
MERGES = ("kernel", "fused")

# Rule constants, stated rather than measured (the tuned table replaces them where it has a point).
_SM_STREAM_BYTES_PER_S = 30e9   # an SM's share of HBM: ~4.0 TB/s achievable / 132 SMs (H200)
_NEAR_BEST = 1.03               # fewest splits within 3% of the modelled best
_PROGRAM_START_S = 1.0e-6       # a program's first loads: one HBM latency plus the q load, per wave
_MERGE_LAUNCH_S = 2.5e-6        # the merge kernel's launch and its one short wave


@dataclass(frozen=True)
class DecodeConfig:
    """How `decode_attention` launches: `num_splits` chunks of the cache per (sequence, KV head)
    (1 = the no-split kernel, no merge), tiles BLOCK_N (cache positions per step) and BLOCK_G (GQA
    group rows, >= 16 for tl.dot), num_warps and num_stages of the chunk kernel, and `merge` (MERGES:
    how split chunks are combined). `source` is 'table', 'rule' or 'caller'; `note` says why the rule
    was used, when it was."""

    num_splits: int
    block_n: int = 128
    num_warps: int = 4
    num_stages: int = 3
    block_g: int = 16
    source: str = "rule"
    note: str = ""
    merge: str = "kernel"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DecodeConfig:
        known = {f: d[f] for f in cls.__dataclass_fields__ if f in d}
        return cls(**known)

    def problems(self) -> list[str]:
        """What makes this config unlaunchable ([] if nothing)."""
        out = []
        for name in ("num_splits", "block_n", "num_warps", "num_stages", "block_g"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                out.append(f"{name} must be a positive integer, got {v!r}")
        if not out:
            if self.block_n not in BLOCK_NS:
                out.append(f"block_n must be one of {BLOCK_NS}, got {self.block_n}")
            if self.num_warps not in NUM_WARPS:
                out.append(f"num_warps must be one of {NUM_WARPS}, got {self.num_warps}")
            if self.block_g < 16 or self.block_g & (self.block_g - 1):
                out.append(f"block_g must be a power of two >= 16 (tl.dot rows), got {self.block_g}")
            if self.num_splits > MAX_SPLITS:
                out.append(f"num_splits must be <= {MAX_SPLITS}, got {self.num_splits}")
        if self.merge not in MERGES:
            out.append(f"merge must be one of {MERGES}, got {self.merge!r}")
        return out


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def block_g_for(q_heads: int, kv_heads: int) -> int:
    """Rows of the group's tl.dot: the GQA group padded to a power of two, at least 16."""
    return max(16, _next_pow2(q_heads // kv_heads))


def chunk_tokens(max_len: int, num_splits: int, align: int) -> tuple[int, int]:
    """(chunk, splits): the chunk rounded up to a multiple of `align` tokens, and the number of
    chunks that leaves (rounding up can leave fewer than asked for)."""
    chunk = -(-(-(-max_len // num_splits)) // align) * align
    return chunk, -(-max_len // chunk)


def modelled_time_s(batch: int, q_heads: int, kv_heads: int, max_len: int, head_dim: int, num_sms: int,
                    num_splits: int, block_n: int = 128, elem_bytes: int = 2) -> float:
    """The rule's time model for one split count (see the module docstring); seconds, for ranking."""
    chunk, splits = chunk_tokens(max_len, num_splits, block_n)
    programs = batch * kv_heads * splits
    waves = -(-programs // num_sms)
    chunk_bytes = chunk * head_dim * 2 * elem_bytes  # K and V
    hbm_s = programs * chunk_bytes / (_SM_STREAM_BYTES_PER_S * num_sms)
    t = max(hbm_s, waves * chunk_bytes / _SM_STREAM_BYTES_PER_S) + waves * _PROGRAM_START_S
    if splits > 1:
        partial_bytes = 2 * batch * q_heads * splits * (head_dim + 1) * 4
        t += partial_bytes / (_SM_STREAM_BYTES_PER_S * num_sms) + _MERGE_LAUNCH_S
    return t


def rule_config(batch: int, q_heads: int, kv_heads: int, max_len: int, head_dim: int, num_sms: int,
                note: str = "") -> DecodeConfig:
    """The SM-count rule: the split count that minimizes `modelled_time_s` with chunks of at least
    MIN_CHUNK_TOKENS; BLOCK_N 128 (64 for head_dim 256, whose 128-token tiles would not fit two
    stages in shared memory), 4 warps, 3 stages: the tile the H100 autotuner chose at every decode
    shape (benchmarks/results/kernels-h100.json)."""
    block_n = 64 if head_dim > 128 else 128
    most = max(1, min(MAX_SPLITS, max_len // MIN_CHUNK_TOKENS))
    times = [modelled_time_s(batch, q_heads, kv_heads, max_len, head_dim, max(1, num_sms), s, block_n)
             for s in range(1, most + 1)]
    best = next(s for s, t in enumerate(times, start=1) if t <= _NEAR_BEST * min(times))
    _, splits = chunk_tokens(max_len, best, block_n)
    return DecodeConfig(num_splits=splits, block_n=block_n, num_warps=4, num_stages=3,
                        block_g=block_g_for(q_heads, kv_heads), source="rule", note=note)


# ------------------------------------------------------------------------------------------- table
def shape_bucket(batch: int, q_heads: int, kv_heads: int, max_len: int, head_dim: int) -> str:
    """Table key of a shape: heads and head_dim exact; batch and max_len rounded to the nearest
    power of two (in log2), so 1000 tokens shares the 1024-token entry."""
    b = 1 << max(0, round(math.log2(max(1, batch))))
    n = 1 << max(0, round(math.log2(max(1, max_len))))
    return f"hq{q_heads}-hkv{kv_heads}-d{head_dim}-b{b}-ctx{n}"


@dataclass(frozen=True)
class TunedTable:
    """Entries by GPU name, then shape bucket; `note` says what went wrong loading it, if anything."""

    entries: dict[str, dict[str, DecodeConfig]]
    path: str
    note: str = ""

    def lookup(self, gpu_name: str | None, bucket: str) -> DecodeConfig | None:
        if gpu_name is None:
            return None
        return self.entries.get(gpu_name, {}).get(bucket)


def parse_table(doc: Any, path: str) -> TunedTable:
    """Read a table document; invalid entries are skipped and named in the note."""
    if not isinstance(doc, dict) or doc.get("version") != TABLE_VERSION or not isinstance(doc.get("gpus"), dict):
        return TunedTable({}, path, f"tuned table {path} is not a version-{TABLE_VERSION} table "
                                    "({'version': 1, 'gpus': {...}}): using the SM-count rule")
    entries: dict[str, dict[str, DecodeConfig]] = {}
    bad: list[str] = []
    for gpu, block in doc["gpus"].items():
        rows = block.get("entries") if isinstance(block, dict) else None
        if not isinstance(rows, dict):
            bad.append(f"{gpu}: no entries")
            continue
        for bucket, row in rows.items():
            try:
                cfg = replace(DecodeConfig.from_json(row), source="table", note="")
            except TypeError as exc:
                bad.append(f"{gpu}/{bucket}: {exc}")
                continue
            problems = cfg.problems()
            if problems:
                bad.append(f"{gpu}/{bucket}: {problems[0]}")
                continue
            entries.setdefault(gpu, {})[bucket] = cfg
    note = f"tuned table {path}: skipped {len(bad)} invalid entries ({'; '.join(bad[:3])})" if bad else ""
    return TunedTable(entries, path, note)


def load_table(path: str | Path | None = None) -> TunedTable:
    """The tuned table at `path` (default TABLE_PATH); a missing or corrupt file gives an empty
    table whose note says so (the dispatcher then uses the rule)."""
    p = Path(path) if path is not None else TABLE_PATH
    try:
        text = p.read_text()
    except FileNotFoundError:
        return TunedTable({}, str(p), f"no tuned table at {p}: using the SM-count rule")
    except OSError as exc:
        return TunedTable({}, str(p), f"tuned table {p} unreadable ({exc}): using the SM-count rule")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return TunedTable({}, str(p), f"tuned table {p} is not valid JSON ({exc}): using the SM-count rule")
    return parse_table(doc, str(p))


@functools.lru_cache(maxsize=4)
def default_table() -> TunedTable:
    return load_table()


def choose_decode_config(batch: int, q_heads: int, kv_heads: int, max_len: int, head_dim: int, num_sms: int,
                         *, gpu_name: str | None = None, table: TunedTable | None = None) -> DecodeConfig:
    """The config for this shape: the tuned table's entry for (gpu_name, shape bucket) when there is
    one, else `rule_config`. table: None reads TABLE_PATH once (cached). The table's split count was
    tuned at the bucket's length; it is re-rounded to this max_len (chunks >= BLOCK_N)."""
    if min(batch, q_heads, kv_heads, max_len, head_dim, num_sms) < 1 or q_heads % kv_heads:
        raise ValueError(f"need positive sizes with q_heads a multiple of kv_heads, got batch={batch}, "
                         f"q_heads={q_heads}, kv_heads={kv_heads}, max_len={max_len}, head_dim={head_dim}, "
                         f"num_sms={num_sms}")
    tbl = default_table() if table is None else table
    bucket = shape_bucket(batch, q_heads, kv_heads, max_len, head_dim)
    hit = tbl.lookup(gpu_name, bucket)
    if hit is not None:
        _, splits = chunk_tokens(max_len, min(hit.num_splits, max(1, max_len // hit.block_n)), hit.block_n)
        return replace(hit, num_splits=splits, block_g=max(hit.block_g, block_g_for(q_heads, kv_heads)))
    if tbl.note:
        note = tbl.note
    elif gpu_name is None:
        note = "no GPU name given: using the SM-count rule"
    else:
        note = f"no tuned entry for {gpu_name!r} at {bucket} in {tbl.path}: using the SM-count rule"
    return rule_config(batch, q_heads, kv_heads, max_len, head_dim, num_sms, note=note)
