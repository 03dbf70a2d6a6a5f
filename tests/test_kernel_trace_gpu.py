"""Kernel slices from a real Profiler(kernels=True): found, graph replays included, on the phases' clock."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

TOL_NS = 50_000  # a kernel may stick out of its phase by this much after alignment
REPLAYS = 50
MATMULS = 20


def test_profiler_kernels_lie_inside_their_phases_and_include_cuda_graph_replays(tmp_path):
    import torch

    from kernelprof.outputs.perfetto import chrome_trace
    from kernelprof.profiler import Profiler, load_profile_run

    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    c = torch.empty_like(a)
    torch.matmul(a, b, out=c)  # cuBLAS handle and lazy module loading, outside the profile
    x = torch.randn(1 << 16, device="cuda")
    y = torch.empty_like(x)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up before capture, on a side stream as capture requires
        torch.cos(x, out=y)
        y.mul_(2)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        torch.cos(x, out=y)
        y.mul_(2)
    torch.cuda.synchronize()

    with Profiler(gpus=[0], kernels=True) as prof:
        with prof.phase("mm"):
            for _ in range(MATMULS):
                torch.matmul(a, b, out=c)
        with prof.phase("graph"):
            for _ in range(REPLAYS):
                graph.replay()
    kt = prof.kernels
    assert kt is not None, prof.kernels_error
    al = kt.alignment
    fit = prof.timeline.clock_fit
    print(f"\n{len(kt)} kernels; alignment {al.method} offset {al.offset_ns} ns residual {al.residual_ns} ns "
          f"({al.drift_ppm:.1f} ppm) slack {al.marker_slack_ns} ns note {al.note}; EventClock fit "
          f"{fit.n_anchors} anchors {fit.drift_ppm:.1f} ppm; CUPTI read {kt.collect_wall_s:.2f} s")
    assert al.method == "marker_kernels" and al.note is None, al.note
    assert abs(al.residual_ns) < TOL_NS

    mm, gr = (next(i for i in prof.timeline.intervals if i.name == n) for n in ("mm", "graph"))
    names = np.array(kt.names, dtype=object)[kt.name_index]
    is_cos = np.array(["cos_kernel" in n for n in names])
    assert is_cos.sum() == REPLAYS, "every graph replay's kernels are recorded"
    assert len(kt) >= MATMULS + 2 * REPLAYS
    in_mm = (kt.start_ns >= mm.t0_ns - TOL_NS) & (kt.end_ns <= mm.t1_ns + TOL_NS)
    in_gr = (kt.start_ns >= gr.t0_ns - TOL_NS) & (kt.end_ns <= gr.t1_ns + TOL_NS)
    # The block launches nothing outside these phases, so every kernel lies inside one of them.
    outside = ~(in_mm | in_gr)
    assert not outside.any(), [(n, s - mm.t0_ns) for n, s in zip(names[outside][:5], kt.start_ns[outside][:5])]
    assert in_gr[is_cos].all() and (in_mm & ~in_gr).sum() >= MATMULS
    # The host ran ahead of the GPU, so each phase's end event directly follows its last kernel:
    # a tight check of the alignment, not only of containment.
    for iv, sel in ((mm, in_mm & ~in_gr), (gr, in_gr & ~in_mm)):
        gap_ns = iv.t1_ns - int(kt.end_ns[sel].max())
        print(f"{iv.name}: phase end - last kernel end = {gap_ns / 1e3:.2f} us")
        assert -TOL_NS < gap_ns < TOL_NS

    back = load_profile_run(prof.save(tmp_path / "p.json")).kernels
    assert back is not None and len(back) == len(kt) and np.array_equal(back.start_ns, kt.start_ns)
    doc = chrome_trace(prof.trace, prof.timeline, kernels=back)
    tracks = [e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"
              and e["pid"] >= 10]
    print("kernel tracks:", tracks)
    assert sum(e["ph"] == "X" and e["pid"] >= 10 for e in doc["traceEvents"]) == len(kt)
