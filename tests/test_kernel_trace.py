"""Kernel slices without a GPU: kineto-like events -> aligned KernelTrace, run-file round trip, Perfetto tracks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kernelprof.timeline.clock import ClockAnchor, Interval, Timeline, fit_clock
from kernelprof.timeline.kernel_trace import (ClockMarker, align_markers, build_kernel_trace, collect_gpu_activity,
                                     kernels_by_phase)
from kernelprof.outputs.perfetto import KERNEL_TID0, chrome_trace, write_chrome_trace
from kernelprof.sampling.replay import synthetic_trace

T0_US = 1_764_000_000_000_000  # trace start, epoch us
T0_NS = T0_US * 1000
OFFSET_NS = -3_217_654_321  # epoch_ns - kineto_ns: kineto's clock runs 3.2 s ahead in these tests
SPIN = "at::cuda::(anonymous namespace)::spin_kernel(long)"  # CUPTI's name for torch.cuda._sleep (torch 2.11)
GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off"
COS = "void at::native::vectorized_elementwise_kernel<4, at::native::cos_kernel_cuda(at::TensorIteratorBase&)>"
ROOT = Path(__file__).resolve().parent.parent


class _Ev:
    """A `_KinetoEvent` stand-in: the methods kernel_trace reads, times in kineto ns."""

    def __init__(self, name, start_ns, end_ns, device_type="CUDA", device=0, stream=7):
        self._v = (name, int(start_ns), int(end_ns), device_type, device, stream)

    def name(self):
        return self._v[0]

    def start_ns(self):
        return self._v[1]

    def end_ns(self):
        return self._v[2]

    def device_type(self):
        return self._v[3]

    def device_index(self):
        return self._v[4]

    def device_resource_id(self):
        return self._v[5]


def _k(epoch_ns: int) -> int:
    """Epoch ns -> the kineto ns the fake profiler reports."""
    return epoch_ns - OFFSET_NS


def _run(jitter_ns=(0, 0), with_markers=True):
    """A fake run: markers at 1 ms and 90 ms, GEMMs in phase "mm" (10-40 ms), graph kernels in
    phase "graph" (50-80 ms) on another stream, CPU runtime events and a memcpy between.
    Returns (kineto events, marker brackets in epoch ns, phases)."""
    ev, brackets = [], []
    for at_ms, jit in zip((1, 90), jitter_ns):
        e0 = T0_NS + at_ms * 1_000_000
        ev.append(_Ev(SPIN, _k(e0 - 100_000), _k(e0 - 500)))  # the preload spin
        # Our events bracket the marker with 300 ns either side; `jit` moves the kernel as kineto saw it.
        ev.append(_Ev(SPIN, _k(e0 + 300) + jit, _k(e0 + 1_700) + jit))
        brackets.append((e0, e0 + 2_000))
    if not with_markers:
        ev = []
    ev.append(_Ev("cudaLaunchKernel", _k(T0_NS + 9_000_000), _k(T0_NS + 9_000_500), device_type="CPU", stream=-1))
    for i in range(10):
        t = T0_NS + 10_000_000 + i * 3_000_000
        ev.append(_Ev(GEMM, _k(t + 1_000), _k(t + 2_900_000)))
    ev.append(_Ev("Memcpy HtoD (Pageable -> Device)", _k(T0_NS + 45_000_000), _k(T0_NS + 45_001_000)))
    ev.append(_Ev("Memset (Device)", _k(T0_NS + 46_000_000), _k(T0_NS + 46_000_900)))
    for r in range(3):  # three graph replays of two kernels each
        t = T0_NS + 50_000_000 + r * 10_000_000
        ev.append(_Ev(COS, _k(t + 2_000), _k(t + 5_000), stream=13))
        ev.append(_Ev("void at::native::AUnaryFunctor<float>", _k(t + 5_500), _k(t + 9_000), stream=13))
    phases = (Interval("mm", T0_NS + 10_000_000, T0_NS + 40_000_000),
              Interval("graph", T0_NS + 50_000_000, T0_NS + 80_000_000))
    return ev, brackets, phases


def test_collect_keeps_gpu_activity_only_and_interns_names():
    ev, _, _ = _run()
    act = collect_gpu_activity(reversed(ev))  # any order in, sorted by start out
    assert "cudaLaunchKernel" not in act.names
    assert len(act.start_ns) == 4 + 10 + 2 + 6
    assert np.all(np.diff(act.start_ns) >= 0)
    assert act.start_ns.dtype == np.int64 and act.name_index.dtype == np.int32
    assert len(act.names) == 6  # spin, gemm, memcpy, memset, cos, functor: each once
    kinds = {act.names[i]: int(k) for i, k in zip(act.name_index, act.kind)}
    assert kinds[GEMM] == 0 and kinds["Memcpy HtoD (Pageable -> Device)"] == 1 and kinds["Memset (Device)"] == 2
    assert set(act.stream.tolist()) == {7, 13}


def test_known_offset_is_recovered_and_markers_dropped():
    ev, brackets, phases = _run()
    kt = build_kernel_trace(collect_gpu_activity(ev), brackets, marker_device=0, device_uuids={0: "GPU-x"})
    a = kt.alignment
    assert a.method == "marker_kernels" and a.note is None
    assert a.offset_ns == OFFSET_NS and a.residual_ns == 0
    assert a.marker_slack_ns == (600, 600)  # 2000 ns bracket around a 1400 ns marker
    assert len(kt) == 18 and "spin_kernel" not in "".join(kt.names[i] for i in set(kt.name_index.tolist()))
    # Every kernel is back at its epoch time, inside its phase.
    gemm = kt.name_index == kt.names.index(GEMM)
    assert kt.start_ns[gemm][0] == T0_NS + 10_001_000
    mm, graph = phases
    assert np.all((kt.start_ns[gemm] >= mm.t0_ns) & (kt.end_ns[gemm] <= mm.t1_ns))
    on13 = kt.stream == 13
    assert on13.sum() == 6 and np.all((kt.start_ns[on13] >= graph.t0_ns) & (kt.end_ns[on13] <= graph.t1_ns))


def test_drift_between_markers_gives_a_residual_and_a_note():
    ev, brackets, _ = _run(jitter_ns=(0, 80_000))  # the end marker 80 us late on kineto's clock
    kt = build_kernel_trace(collect_gpu_activity(ev), brackets, marker_device=0)
    a = kt.alignment
    assert a.method == "marker_kernels"
    assert a.residual_ns == -80_000 and a.offset_ns == OFFSET_NS  # at the start marker
    assert a.drift_ppm == pytest.approx(-80_000 / (89e6 + 80_000) * 1e6, rel=1e-9)  # over the markers' 89.08 ms (kineto)
    assert "moved -80.0 us apart" in a.note
    # The line through both markers: a kernel at 45 ms (kineto) lands 40.4 us earlier than a constant offset puts it.
    memcpy = kt.name_index == kt.names.index("Memcpy HtoD (Pageable -> Device)")
    expected = T0_NS + 45_000_000 + round((_k(T0_NS + 45_000_000) - _k(T0_NS + 1_001_000)) * a.drift_ppm * 1e-6)
    assert kt.start_ns[memcpy][0] == expected


def test_small_residual_is_not_flagged():
    ev, brackets, _ = _run(jitter_ns=(0, 5_000))
    a = build_kernel_trace(collect_gpu_activity(ev), brackets, marker_device=0).alignment
    assert a.residual_ns == -5_000 and a.note is None and a.drift_ppm == pytest.approx(-5_000 / (89e6 + 5_000) * 1e6, rel=1e-9)


def test_missing_markers_fall_back_to_kineto_absolute_time_with_a_note():
    ev, brackets, _ = _run(with_markers=False)
    kt = build_kernel_trace(collect_gpu_activity(ev), brackets, marker_device=0)
    a = kt.alignment
    assert a.method == "kineto_absolute" and a.offset_ns == 0 and a.residual_ns is None
    assert "found 0 marker kernels" in a.note and "not checked against the phases" in a.note
    assert len(kt) == 18 and kt.start_ns.min() == _k(T0_NS + 10_001_000)  # kineto's own ns, untouched


def test_marker_on_another_device_is_not_used():
    ev, brackets, _ = _run()
    kt = build_kernel_trace(collect_gpu_activity(ev), brackets, marker_device=1)
    assert kt.alignment.method == "kineto_absolute"


def test_align_markers_math():
    m0 = ClockMarker(1_000, 3_000, 10_500, 11_500)  # mid 2000 vs 11000: offset -9000, slack 1000
    m1 = ClockMarker(1_005_000, 1_006_000, 1_014_200, 1_015_000)  # mid 1005500 vs 1014600: offset -9100, slack 200
    a = align_markers([m0, m1])
    assert a.marker_offsets_ns == (-9000.0, -9100.0) and a.marker_slack_ns == (1000, 200)
    assert a.offset_ns == -9000 and a.ref_kineto_ns == 11_000 and a.residual_ns == -100 and a.note is None
    assert a.drift_ppm == pytest.approx(-100 / 1_003_600 * 1e6)
    # The line reproduces both markers' offsets.
    mids = np.array([11_000, 1_014_600], dtype=np.int64)
    assert (a.to_epoch_ns(mids) - mids).tolist() == [-9000, -9100]
    one = align_markers([m0])
    assert one.residual_ns is None and one.drift_ppm == 0.0 and "only one marker" in one.note
    loose = align_markers([m0, ClockMarker(1_005_000, 1_105_000, 1_014_200, 1_015_000)])
    assert "loose" in loose.note


def _profile_parts():
    ev, brackets, phases = _run()
    kt = build_kernel_trace(collect_gpu_activity(ev), brackets, marker_device=0, device_uuids={0: "GPU-synthetic-0"})
    trace = synthetic_trace(lambda t: np.full_like(t, 300.0), start_t_us=T0_US, duration_s=0.1)
    object.__setattr__(trace.gpus[0], "uuid", "GPU-synthetic-0")
    tl = Timeline(phases, clock_fit=fit_clock([ClockAnchor(0.0, T0_NS)]))
    window = Interval("window", T0_NS, T0_NS + 100_000_000, kind="window")
    return trace, tl, window, kt


def test_run_file_round_trip_with_and_without_kernels(tmp_path):
    from kernelprof.attribution.intervals import SensorProfile
    from kernelprof.profiler import load_profile, load_profile_inputs, load_profile_run, save_profile

    trace, tl, window, kt = _profile_parts()
    with_k = save_profile(tmp_path / "k.json", trace, tl, window, [SensorProfile()], kernels=kt,
                          environment={"host": "test"})
    back = load_profile_run(with_k).kernels
    assert back is not None and back.names == kt.names and back.alignment == kt.alignment
    for name in ("name_index", "kind", "start_ns", "end_ns", "stream", "device"):
        a, b = getattr(back, name), getattr(kt, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert back.device_uuids == {0: "GPU-synthetic-0"}
    payload = json.loads(with_k.read_text())["payload"]
    assert payload["kernels"]["count"] == 18 and payload["kernels"]["alignment"]["offset_ns"] == OFFSET_NS
    assert load_profile(with_k).phase("mm").time_s == pytest.approx(0.03)
    # Without kernels: nothing under "kernels", and the 5-tuple loader is unchanged.
    plain = save_profile(tmp_path / "p.json", trace, tl, window, [SensorProfile()], environment={"host": "test"})
    assert "kernels" not in json.loads(plain.read_text())["payload"]
    assert load_profile_run(plain).kernels is None
    assert len(load_profile_inputs(plain)) == 5


def test_shipped_older_profile_loads_without_kernels():
    from kernelprof.profiler import load_profile_run

    r = load_profile_run(ROOT / "traces" / "llm-llama-3.1-8b-b8-optimized.profile.json")
    assert r.kernels is None and r.timeline.intervals


def test_perfetto_kernel_slices_on_gpu_stream_tracks_at_phase_times(tmp_path):
    trace, tl, window, kt = _profile_parts()
    doc = chrome_trace(trace, tl, title="t", kernels=kt)
    ev = doc["traceEvents"]
    gpu_pid = 10 + trace.gpus[0].gpu
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names[(gpu_pid, KERNEL_TID0)] == "stream 7 kernels" and names[(gpu_pid, KERNEL_TID0 + 1)] == "stream 13 kernels"
    slices = [e for e in ev if e["ph"] == "X" and e["pid"] == gpu_pid]
    assert len(slices) == 18
    gemm = [e for e in slices if e["name"] == GEMM]
    assert len(gemm) == 10 and {e["tid"] for e in gemm} == {KERNEL_TID0} and all("cat" not in e for e in gemm)
    # Same clock as the phases: us since the trace start, exact to the ns.
    assert gemm[0]["ts"] == 10_001.0 and gemm[0]["dur"] == 2_899.0
    mm = next(e for e in ev if e["ph"] == "X" and e["pid"] == 1 and e["name"] == "mm")
    assert mm["ts"] == 10_000.0 and all(mm["ts"] <= e["ts"] and e["ts"] + e["dur"] <= mm["ts"] + mm["dur"] for e in gemm)
    graph = [e for e in slices if e["tid"] == KERNEL_TID0 + 1]
    assert len(graph) == 6 and graph[0]["name"] == COS and graph[0]["ts"] == 50_002.0
    assert {e.get("cat") for e in slices} == {None, "memcpy", "memset"}
    assert doc["otherData"]["kernels"]["count"] == 18 and doc["otherData"]["kernels"]["alignment"] == "marker_kernels"
    path = write_chrome_trace(tmp_path / "t.json", trace, tl, kernels=kt)
    assert len([e for e in json.loads(path.read_text())["traceEvents"] if e["ph"] == "X"]) == 18 + 2


def test_perfetto_overlapping_kernels_on_one_stream_get_an_overlap_lane_and_unknown_gpus_a_process():
    trace, tl, window, _ = _profile_parts()
    ev = [_Ev(GEMM, _k(T0_NS + 1_000), _k(T0_NS + 5_000), device=3), _Ev(COS, _k(T0_NS + 2_000), _k(T0_NS + 3_000), device=3),
          _Ev(GEMM, _k(T0_NS + 6_000), _k(T0_NS + 7_000), device=3)]
    kt = build_kernel_trace(collect_gpu_activity(ev), [], marker_device=3)
    doc = chrome_trace(trace, tl, kernels=kt)
    x = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == 1003]
    assert [e["tid"] for e in x] == [KERNEL_TID0, KERNEL_TID0 + 1, KERNEL_TID0]
    assert any(e["ph"] == "M" and e["pid"] == 1003 and "no power trace" in e["args"]["name"] for e in doc["traceEvents"])


def test_long_names_are_kept_whole_on_every_slice():
    trace, tl, _, _ = _profile_parts()
    a, b = "void " + "a" * 400 + "<1>", "void " + "a" * 400 + "<2>"
    ev = [_Ev(a, _k(T0_NS + 1_000), _k(T0_NS + 2_000)), _Ev(b, _k(T0_NS + 3_000), _k(T0_NS + 4_000))]
    doc = chrome_trace(trace, tl, kernels=build_kernel_trace(collect_gpu_activity(ev), [], marker_device=0))
    x = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] != 1]
    assert [e["name"] for e in x] == [a, b] and "args" not in x[0]
    assert "kernel_names" not in doc["otherData"]


def test_kernels_by_phase_sums_gpu_time_per_phase_name():
    _, tl, _, kt = _profile_parts()
    by = {p.phase: p for p in kernels_by_phase(kt, tl, top=1)}
    assert set(by) == {"mm", "graph"}
    mm = by["mm"]
    assert mm.instances == 1 and mm.phase_time_s == pytest.approx(0.03)
    assert len(mm.kernels) == 1 and mm.kernels[0].name == GEMM and mm.kernels[0].calls == 10
    assert mm.kernels[0].gpu_time_s == pytest.approx(10 * 2_899e-6)
    assert by["graph"].kernel_time_s == pytest.approx(3 * (3e-6 + 3.5e-6))


def test_report_of_a_profile_with_kernels_prints_the_kernel_table(tmp_path, capsys):
    import argparse

    from kernelprof.attribution.intervals import SensorProfile
    from kernelprof.cli import report
    from kernelprof.profiler import save_profile

    trace, tl, window, kt = _profile_parts()
    path = save_profile(tmp_path / "k.json", trace, tl, window, [SensorProfile()], kernels=kt,
                        environment={"host": "test"})
    from kernelprof.cli.output import console

    with console.capture() as cap:
        report.run(argparse.Namespace(path=str(path), json=False))
    out = cap.get()
    assert "GPU kernels by phase" in out and "sm90_xmma_gemm" in out and "marker_kernels" in out
