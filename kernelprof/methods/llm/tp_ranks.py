"""Per-rank records of a tensor-parallel run, their clock alignment and their merge on rank 0.

Takes in: one `RankRecord` per rank (its host, GPU UUID, phases with time and energy from its own
sampler, kernel time per class), gathered to rank 0 with torch.distributed.gather_object.
Produces: `TPResult`, per phase the time (slowest rank), the energy of every GPU and their total.

Multi-node design:
- per-node samplers: every rank samples only its own GPU (CUDA index = LOCAL_RANK, matched to NVML
  by UUID), so no node reads another node's GPUs and a node's sampler count is its local GPU count;
- merging by (host, UUID): CUDA indices restart at 0 on every node, so the key of a GPU is the
  host name plus its UUID; two ranks reporting one key are an error (two ranks on one GPU);
- clocks: each host's epoch clock (NVML and phases use it) is offset from rank 0's. `clock_offsets_ns`
  reads time.time_ns() right after each of several barriers and keeps, per rank, the median of its
  reading minus rank 0's; the barrier's release skew (tens of us over TCP, a few us over NVLink) is
  the bias left, far below the 20 ms sensor window. Subtracting a rank's offset puts its
  timestamps on rank 0's clock; `RankRecord.clock_offset_ns` carries it into the run file.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from kernelprof.errors import MeasurementError

COMM_PREFIXES = ("nccl", "ncclDevKernel", "ncclKernel")


def kernel_class(name: str) -> str:
    """'communication' for NCCL kernels, 'gemm', 'attention' or 'other' for the rest."""
    n = name.lower()
    short = n[5:] if n.startswith("void ") else n
    if short.startswith("nccl") or "allreduce" in n or "all_reduce" in n:
        return "communication"
    if any(s in n for s in ("gemm", "cutlass", "xmma", "cublas", "matmul")):
        return "gemm"
    if any(s in n for s in ("attn", "attention", "flash", "decode_kernel", "_fwd")):
        return "attention"
    return "other"


@dataclass(frozen=True)
class RankPhase:
    name: str
    time_s: float
    energy_j: float | None          # this GPU's energy over the phase (its own sampler)
    mean_power_w: float | None
    t0_ns: int                      # first instance's start, on this rank's host clock
    kernel_time_s: dict[str, float] | None = None  # per kernel class; None without kernel slices

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "RankPhase":
        return cls(**d)


@dataclass(frozen=True)
class RankRecord:
    rank: int
    world_size: int
    host: str
    local_rank: int
    gpu_uuid: str
    gpu_name: str
    clock_offset_ns: int            # this host's clock minus rank 0's
    phases: tuple[RankPhase, ...]
    total_energy_j: float | None
    counter_energy_j: float | None
    flags: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.host, self.gpu_uuid)

    def phase(self, name: str) -> RankPhase | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "RankRecord":
        d = dict(d)
        d["phases"] = tuple(RankPhase.from_json(p) for p in d["phases"])
        d["flags"] = tuple(d.get("flags", ()))
        return cls(**d)


@dataclass(frozen=True)
class TPPhase:
    name: str
    time_s: float                           # slowest rank (the request waits for all)
    energy_per_gpu_j: tuple[float | None, ...]  # in rank order
    energy_total_j: float | None            # None if any GPU lacks a figure
    start_spread_ms: float                  # ranks' aligned start times, max - min
    comm_time_share: float | None           # communication kernels' share of kernel time, all ranks

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "energy_per_gpu_j": list(self.energy_per_gpu_j)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TPPhase":
        return cls(**{**d, "energy_per_gpu_j": tuple(d["energy_per_gpu_j"])})


@dataclass(frozen=True)
class TPResult:
    model: str
    mode: str
    tp: int
    batch: int
    input_len: int
    output_len: int
    requests: int
    ranks: tuple[RankRecord, ...]
    phases: tuple[TPPhase, ...]
    time_per_request_s: float               # a request = one generate call of `batch` sequences
    energy_per_request_j: float | None      # all GPUs, phases summed
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ranks": [r.to_json() for r in self.ranks]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TPResult":
        return cls(**{**d, "ranks": tuple(RankRecord.from_json(r) for r in d["ranks"]),
                      "phases": tuple(TPPhase.from_json(p) for p in d["phases"]), "notes": tuple(d.get("notes", ()))})


def clock_offsets_ns(barrier: Callable[[], None], all_gather: Callable[[int], list[int]], *, rounds: int = 5,
                     clock: Callable[[], int] = time.time_ns) -> list[int]:
    """Per rank, its clock minus rank 0's (median over `rounds` barrier releases)."""
    per_round = []
    for _ in range(rounds):
        barrier()
        per_round.append(all_gather(clock()))
    world = len(per_round[0])
    return [int(statistics.median(r[k] - r[0] for r in per_round)) for k in range(world)]


def merge_ranks(records: list[RankRecord], *, requests: int) -> tuple[tuple[TPPhase, ...], tuple[str, ...]]:
    """Phases over all ranks, in rank order; MeasurementError on a GPU reported twice."""
    records = sorted(records, key=lambda r: r.rank)
    seen: dict[tuple[str, str], int] = {}
    for r in records:
        if r.key in seen:
            raise MeasurementError(f"ranks {seen[r.key]} and {r.rank} both report GPU {r.gpu_uuid} on {r.host}: "
                                   "two ranks share one GPU; give each rank its own (LOCAL_RANK -> CUDA index)")
        seen[r.key] = r.rank
    names = [p.name for p in records[0].phases]
    phases, notes = [], []
    for name in names:
        per = [r.phase(name) for r in records]
        if any(p is None for p in per):
            raise MeasurementError(f"phase {name!r} is missing on ranks "
                                   f"{[r.rank for r, p in zip(records, per) if p is None]}")
        energies = tuple(p.energy_j for p in per)
        starts = [p.t0_ns - r.clock_offset_ns for r, p in zip(records, per)]
        comm = [p.kernel_time_s for p in per]
        share = None
        if all(c is not None for c in comm):
            tot = sum(sum(c.values()) for c in comm)
            share = None if not tot else sum(c.get("communication", 0.0) for c in comm) / tot
        phases.append(TPPhase(name, max(p.time_s for p in per), energies,
                              None if None in energies else float(sum(energies)),
                              (max(starts) - min(starts)) / 1e6, share))
    hosts = sorted({r.host for r in records})
    notes.append(f"{len(records)} ranks on {len(hosts)} host(s) ({', '.join(hosts)}); each GPU sampled by its own "
                 "rank, matched by UUID; times on rank 0's clock")
    return tuple(phases), tuple(notes)
