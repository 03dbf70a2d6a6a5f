"""Per-rank records of a TP run: two simulated hosts (two gloo processes, fake host names and a
skewed clock on one) merge by (host, UUID) onto rank 0's clock."""
from __future__ import annotations

import json
import time

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from kernelprof.errors import MeasurementError
from kernelprof.methods.llm.tp_ranks import (RankPhase, RankRecord, TPResult, clock_offsets_ns, kernel_class,
                                             merge_ranks)
from tests.test_tensor_parallel import free_port

SKEW_NS = 5_000_000_000  # host B's clock runs 5 s ahead of host A's


def _host(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        host = ("node-a", "node-b")[rank]
        skew = rank * SKEW_NS
        clock = lambda: time.time_ns() + skew  # noqa: E731

        def gather(v: int) -> list[int]:
            got: list = [None, None]
            dist.all_gather_object(got, v)
            return got

        offsets = clock_offsets_ns(dist.barrier, gather, clock=clock)
        dist.barrier()
        t0 = clock()  # both "hosts" start the phase right after one barrier
        # Not a measurement: fixed joules so the merge's arithmetic can be checked exactly.
        rec = RankRecord(rank, 2, host, 0, "GPU-same-local-uuid", "simulated", offsets[rank],
                         (RankPhase("prefill", 0.1, 10.0 + rank, 100.0, t0, {"communication": 0.01, "gemm": 0.09}),
                          RankPhase("decode", 0.5, 40.0 + rank, 80.0, t0 + 100_000_000, None)), 50.0 + rank, None)
        got: list = [None, None]
        dist.gather_object(rec.to_json(), got if rank == 0 else None, dst=0)
        if rank == 0:
            with open(out, "w") as f:
                json.dump(got, f)
    finally:
        dist.destroy_process_group()


def test_two_hosts_merge_by_host_and_uuid(tmp_path):
    out = str(tmp_path / "ranks.json")
    mp.spawn(_host, args=(free_port(), out), nprocs=2, join=True)
    records = [RankRecord.from_json(d) for d in json.load(open(out))]
    assert [r.host for r in records] == ["node-a", "node-b"]
    # The skew is recovered within the barrier's release jitter (< 50 ms even on 2 busy cores).
    assert abs(records[1].clock_offset_ns - SKEW_NS) < 50_000_000
    phases, notes = merge_ranks(records, requests=1)
    prefill, decode = phases
    assert prefill.energy_per_gpu_j == (10.0, 11.0) and prefill.energy_total_j == 21.0
    assert decode.energy_total_j == 81.0
    assert prefill.start_spread_ms < 50  # 5000 ms apart before alignment
    assert prefill.comm_time_share == pytest.approx(0.1)
    assert decode.comm_time_share is None  # no kernel slices there
    assert "2 host(s)" in notes[0]
    result = TPResult("tiny", "eager", 2, 1, 4, 2, 1, tuple(records), phases, 0.6, 102.0)
    assert TPResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_one_gpu_reported_by_two_ranks_is_an_error():
    p = (RankPhase("prefill", 0.1, 1.0, 10.0, 0),)
    a = RankRecord(0, 2, "h", 0, "GPU-x", "n", 0, p, 1.0, None)
    b = RankRecord(1, 2, "h", 1, "GPU-x", "n", 0, p, 1.0, None)
    with pytest.raises(MeasurementError, match="two ranks share one GPU"):
        merge_ranks([a, b], requests=1)


def test_nccl_kernels_are_their_own_class():
    assert kernel_class("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)") == "communication"
    assert kernel_class("void ncclKernel_AllReduce_RING_LL_Sum_float(ncclWork*)") == "communication"
    assert kernel_class("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64") == "gemm"
    assert kernel_class("_attn_fwd") == "attention"
    assert kernel_class("elementwise_kernel") == "other"
