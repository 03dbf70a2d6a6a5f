"""`kernelprof counters` without a GPU: ncu's real H100 output parsed, FLOP mapping, tile models,
verdicts, ncu's failure modes, run files and rendering.

The fixture is the real output of ncu 2025.3.1 on an H100 for one cuBLAS bf16 4096^3 matmul inside
the NVTX range kernelprof_target (benchmarks/results/ncu-probe-h100.csv.txt). Synthetic kernels
below test arithmetic only (sums, weighting, verdict branches), never a claim about hardware.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kernelprof.estimates.counters import metrics, ncu, tile_models, totals
from kernelprof.estimates.counters import run as counters_run
from kernelprof.outputs.runfile import load_run, save_run

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "benchmarks" / "results" / "ncu-probe-h100.csv.txt"
H100 = "NVIDIA H100 80GB HBM3"
N = 4096


@pytest.fixture(scope="module")
def captured() -> list[ncu.NcuKernel]:
    return ncu.parse_raw_csv(CAPTURE.read_text())


@pytest.fixture(scope="module")
def gemm_result(captured) -> counters_run.CountersResult:
    return counters_run.build_result("gemm", "cublas", f"{N}x{N}x{N}", "bf16", captured, device_name=H100,
                                 compute_capability="9.0")


# --- parsing ncu's CSV -------------------------------------------------------------------------

def test_capture_parses_to_one_kernel_with_its_counters(captured):
    assert len(captured) == 1
    k = captured[0]
    assert k.id == 0
    assert k.name == "nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_NNT"
    assert k.grid == "(2, 66, 1)" and k.block == "(384, 1, 1)"
    assert "kernelprof_target" in k.nvtx
    assert k.value("sm__ops_path_tensor_src_bf16_dst_fp32.sum") == 2 * N**3
    assert k.value(metrics.DRAM_READ) == 150_572_800
    assert k.value(metrics.DRAM_WRITE) == 28_284_160
    assert k.value(metrics.L2_BYTES) == 1_050_798_112
    assert k.units[metrics.DURATION] == "ns"
    assert k.value(metrics.DURATION) == pytest.approx(178.784e-6, rel=1e-12)
    # Thousands separators with decimals, and text attributes left out of the values.
    assert k.values["lts__t_bytes.avg"] == pytest.approx(13_134_976.40)
    assert "device__attribute_display_name" not in k.values


def test_parse_number_and_units():
    assert ncu.parse_number("1,024") == 1024.0
    assert ncu.parse_number("13,134,976.40") == pytest.approx(13134976.4)
    assert ncu.parse_number("0.59") == 0.59
    assert ncu.parse_number("n/a") is None and ncu.parse_number("") is None
    assert ncu.parse_number("(2, 66, 1)") == "(2, 66, 1)"
    assert ncu.parse_number("PolicySpread") == "PolicySpread"
    assert ncu.unit_scale("byte") == 1 and ncu.unit_scale("Mbyte") == 1e6 and ncu.unit_scale("Gbyte") == 1e9
    assert ncu.unit_scale("ns") == 1e-9 and ncu.unit_scale("usecond") == 1e-6 and ncu.unit_scale("msecond") == 1e-3
    assert ncu.unit_scale("Kinst") == 1e3 and ncu.unit_scale("%") == 1 and ncu.unit_scale("Ghz") == 1e9


def test_scaled_units_are_converted_to_si():
    text = ('==PROF== Connected to process 1\n"ID","Kernel Name","dram__bytes_read.sum","gpu__time_duration.sum"\n'
            '"","","Mbyte","usecond"\n"0","k","150.57","178.78"\n"1","k2","1,000.5","2"\n==PROF== Disconnected\n')
    ks = ncu.parse_raw_csv(text)
    assert [k.name for k in ks] == ["k", "k2"]
    assert ks[0].value("dram__bytes_read.sum") == pytest.approx(150.57e6)
    assert ks[1].value("dram__bytes_read.sum") == pytest.approx(1000.5e6)
    assert ks[0].value("gpu__time_duration.sum") == pytest.approx(178.78e-6)


def test_output_without_csv_parses_to_nothing():
    assert ncu.parse_raw_csv("==PROF== Connected\n==WARNING== No kernels were profiled.\n") == []


# --- FLOPs from counters -----------------------------------------------------------------------

def _kernel(kid: int, name: str, **values: float) -> ncu.NcuKernel:
    vals = {k.replace("__DOT__", "."): v for k, v in values.items()}
    units = {k: ("ns" if k == metrics.DURATION else "") for k in vals}
    return ncu.NcuKernel(kid, name, "(1, 1, 1)", "(128, 1, 1)", vals, units)


def test_tensor_flops_by_dtype_from_capture(gemm_result):
    t = gemm_result.totals
    assert t.tensor_flops == 2 * N**3
    assert t.tensor_flops_by_dtype["bf16"] == 2 * N**3 and t.tensor_flops_by_dtype["fp16"] == 0
    assert t.tensor_flops_by_path["bf16 wgmma"] == 2 * N**3 and t.tensor_flops_by_path["bf16 mma.sync"] == 0
    assert t.fma_flops == 0
    assert t.kernel_count == 1


def test_fma_flops_count_fma_twice():
    s = metrics._SASS
    k = ncu.NcuKernel(0, "k", "", "", {s.format("ffma"): 10.0, s.format("fadd"): 3.0, s.format("fmul"): 5.0,
                                       s.format("hfma"): 7.0, s.format("dfma"): 1.0}, {})
    assert totals.fma_flops([k], "fp32") == 2 * 10 + 3 + 5
    assert totals.fma_flops([k], "fp16") == 14
    assert totals.fma_flops([k], "fp64") == 2
    assert totals.totals_from_kernels([k]).fma_flops == 28 + 14 + 2


def test_several_kernels_sum_and_percentages_weigh_by_duration():
    bf16 = metrics.TENSOR_FLOP_METRICS["bf16"]
    chunk = ncu.NcuKernel(0, "_decode_chunk_kernel", "(128, 8, 1)", "", {
        bf16: 1000.0, metrics.DRAM_READ: 500.0, metrics.DURATION: 900.0, metrics.OCCUPANCY: 50.0}, {
        metrics.DURATION: "ns"})
    merge = ncu.NcuKernel(1, "_decode_merge_kernel", "(512, 1, 1)", "", {
        bf16: 0.0, metrics.DRAM_READ: 20.0, metrics.DURATION: 100.0, metrics.OCCUPANCY: 10.0}, {
        metrics.DURATION: "ns"})
    t = totals.totals_from_kernels([chunk, merge])
    assert t.kernel_count == 2
    assert t.tensor_flops == 1000 and t.dram_read_bytes == 520
    assert t.duration_s == pytest.approx(1000e-9)
    assert t.achieved_occupancy_pct == pytest.approx((50 * 900 + 10 * 100) / 1000)
    assert t.dram_write_bytes is None  # not collected: None, not 0


# --- tile models -------------------------------------------------------------------------------

@pytest.mark.parametrize("bm,bn", [(128, 128), (128, 64), (64, 64)])
def test_causal_pairs_match_the_closed_form(bm, bn):
    s = 4096
    t = s // bm
    assert tile_models.causal_computed_pairs(s, bm, bn) == t * (t + 1) // 2 * bm * bm


def test_causal_pairs_ratio_for_128_tiles_at_4096():
    s = 4096
    ratio = tile_models.causal_computed_pairs(s, 128, 128) / (s * (s + 1) // 2)
    assert ratio == pytest.approx(1.0310, abs=1e-4)


@pytest.mark.parametrize("s,bm,bn", [(1, 16, 16), (100, 32, 16), (129, 64, 64), (300, 128, 32)])
def test_causal_pairs_against_a_tile_walk(s, bm, bn):
    """Walk the tiles a causal kernel visits (every key block that holds a key some row of the
    query block may see) and count their area; pairs with a visible key are never left out."""
    walked = kept = 0
    for m0 in range(0, s, bm):
        last_row = min(m0 + bm, s) - 1
        for n0 in range(0, s, bn):
            if n0 <= last_row:
                walked += bm * bn
        kept += sum(min(r + 1, s) for r in range(m0, min(m0 + bm, s)))
    assert tile_models.causal_computed_pairs(s, bm, bn) == walked
    assert kept == s * (s + 1) // 2 and walked >= kept


def test_decode_padding_model_at_benchmark_shape():
    from kernels.registry import get_op

    shape = get_op("decode").parse_shape("b=16,h=32,kv=8,ctx=8192,d=128")
    tile = {"BLOCK_N": 64, "BLOCK_G": 16, "chunk": 1024, "num_splits": 8}
    flops, note = tile_models.computed_flops("decode", "triton-splitk", shape, tile, "9.0")
    assert flops == 4 * get_op("decode").flops(shape)  # 16 MMA rows for a GQA group of 4
    assert "padded" in note and "16" in note


def test_decode_keys_pad_to_block_per_chunk():
    # lengths 100 and 300, chunk 128, 3 splits, BLOCK_N 64: chunks [0,100) -> 128 keys;
    # [0,128) 128, [128,256) 128, [256,300) 64
    assert tile_models.decode_computed_keys([100, 300], 128, 3, 64) == 128 + 128 + 128 + 64


def test_gemm_tile_padding():
    from kernels.registry import get_op

    shape = get_op("gemm").parse_shape("100x200x70")
    flops, note = tile_models.computed_flops("gemm", "triton", shape, {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64}, None)
    assert flops == 2 * 128 * 256 * 128 and "padded" in note
    assert tile_models.computed_flops("gemm", "cublas", shape, {}, None)[0] is None
    big = get_op("gemm").parse_shape("4096x4096x4096")
    assert tile_models.computed_flops("gemm", "cublas", big, {}, None)[0] == 2 * 4096**3


def test_sdpa_flash_uses_fa2_tile_only_where_known():
    from kernels.registry import get_op

    shape = get_op("attention").parse_shape("b=4,h=32,s=4096,d=128,causal")
    flops, note = tile_models.computed_flops("attention", "sdpa-flash", shape, {}, "9.0")
    assert flops / get_op("attention").flops(shape) == pytest.approx(1.0310, abs=1e-4)
    assert "FlashAttention-2" in note
    assert tile_models.computed_flops("attention", "sdpa-flash", shape, {}, "12.0")[0] is None
    eager, _ = tile_models.computed_flops("attention", "eager", shape, {}, "9.0")
    assert eager == 4 * 4 * 32 * 128 * 4096 * 4096


# --- verdicts ----------------------------------------------------------------------------------

def test_verdicts_on_the_real_h100_gemm(gemm_result):
    rows = {c.quantity: c for c in gemm_result.comparisons}
    flops = rows["FLOPs (tensor cores)"]
    assert flops.status == "agrees" and flops.ratio == 1.0 and flops.tolerance == 0.01
    reads = rows["DRAM bytes read"]
    assert reads.analytic == 2 * N * N * 2  # A and B once
    assert reads.status == "above" and reads.ratio == pytest.approx(150_572_800 / (2 * N * N * 2))
    assert "re-read" in reads.explanation and "L2" in reads.explanation
    writes = rows["DRAM bytes written"]
    assert writes.analytic == N * N * 2
    assert writes.status == "below" and "still in L2" in writes.explanation
    dur = rows["duration"]
    assert dur.status == "info" and dur.analytic == pytest.approx(2 * N**3 / 989.4e12)
    assert rows["achieved occupancy"].status == "missing"  # not in the probe's metric list
    assert metrics.OCCUPANCY in gemm_result.metrics_missing
    assert metrics.DRAM_READ not in gemm_result.metrics_missing


def _decode_result(tensor_flops: float, read_bytes: float, write_bytes: float, tile: dict) -> counters_run.CountersResult:
    k = ncu.NcuKernel(0, "_decode_chunk_kernel", "(128, 8, 1)", "", {
        metrics.TENSOR_FLOP_METRICS["bf16"]: tensor_flops, metrics.DRAM_READ: read_bytes,
        metrics.DRAM_WRITE: write_bytes, metrics.DURATION: 1e5}, {metrics.DURATION: "ns"})
    return counters_run.build_result("decode", "triton-splitk", "b=16,h=32,kv=8,ctx=8192,d=128", "bf16", [k],
                                 tile_config=tile, device_name=H100, compute_capability="9.0")


def test_gqa_padding_is_explained_not_blamed():
    from kernels.registry import get_op

    spec = get_op("decode")
    shape = spec.parse_shape("b=16,h=32,kv=8,ctx=8192,d=128")
    exact = spec.flops(shape)
    tile = {"BLOCK_N": 64, "BLOCK_G": 16, "chunk": 1024, "num_splits": 8}
    r = _decode_result(4 * exact, 537e6, 1e6, tile)
    row = {c.quantity: c for c in r.comparisons}["FLOPs (tensor cores)"]
    assert row.status == "explained" and "GQA" in row.explanation and row.expected == 4 * exact
    # The same count without a tile model: flagged as above, with padding named as a cause.
    r2 = _decode_result(4 * exact, 537e6, 1e6, {})
    row2 = {c.quantity: c for c in r2.comparisons}["FLOPs (tensor cores)"]
    assert row2.status == "above" and "padding" in row2.explanation
    # A count that matches neither the exact nor the padded figure is not called agreement.
    r3 = _decode_result(2 * exact, 537e6, 1e6, tile)
    assert {c.quantity: c for c in r3.comparisons}["FLOPs (tensor cores)"].status == "above"


def test_split_k_partials_in_the_byte_verdicts():
    from kernels.registry import get_op
    import torch

    spec = get_op("decode")
    shape = spec.parse_shape("b=16,h=32,kv=8,ctx=8192,d=128")
    tile = {"BLOCK_N": 64, "BLOCK_G": 16, "chunk": 1024, "num_splits": 8}
    partials = 16 * 32 * 8 * 129 * 4
    out = 16 * 32 * 128 * 2
    min_read = spec.min_bytes(shape, torch.bfloat16) - out
    r = _decode_result(0, min_read + partials, out + partials, tile)
    rows = {c.quantity: c for c in r.comparisons}
    assert r.analytic.extra_read_bytes == partials
    assert rows["DRAM bytes read"].status == "agrees" and "split-K" in rows["DRAM bytes read"].explanation
    assert rows["DRAM bytes written"].status == "explained" and "split-K" in rows["DRAM bytes written"].explanation
    # 20% more reads than the minimum is not within 5%, with or without the partials.
    r2 = _decode_result(0, 1.2 * min_read, out, tile)
    assert {c.quantity: c for c in r2.comparisons}["DRAM bytes read"].status == "above"


def test_mma_sync_path_counts_even_if_the_per_source_counter_missed_it():
    m = metrics.TENSOR_PATH_METRICS
    k = ncu.NcuKernel(0, "k", "", "", {metrics.TENSOR_FLOP_METRICS["bf16"]: 100.0, m["bf16 wgmma"]: 100.0,
                                       m["bf16 mma.sync"]: 50.0}, {})
    r = counters_run.build_result("gemm", "cublas", "64x64x64", "bf16", [k])
    assert r.totals.tensor_flops_by_dtype["bf16"] == 150 and any("path sum" in n for n in r.notes)
    consistent = ncu.NcuKernel(0, "k", "", "", {metrics.TENSOR_FLOP_METRICS["bf16"]: 150.0, m["bf16 wgmma"]: 100.0,
                                                m["bf16 mma.sync"]: 50.0}, {})
    r2 = counters_run.build_result("gemm", "cublas", "64x64x64", "bf16", [consistent])
    assert r2.totals.tensor_flops_by_dtype["bf16"] == 150 and not r2.notes


def test_fma_only_math_is_called_out():
    s = metrics._SASS
    k = ncu.NcuKernel(0, "gemv", "", "", {metrics.TENSOR_FLOP_METRICS["bf16"]: 0.0, s.format("ffma"): 2 * 16**3 / 2,
                                          s.format("fadd"): 0.0, s.format("fmul"): 0.0}, {})
    r = counters_run.build_result("gemm", "cublas", "16x16x16", "bf16", [k])
    assert {c.quantity: c for c in r.comparisons}["FLOPs (tensor cores)"].status == "other-pipe"


def test_wrong_dtype_tensor_work_is_noted():
    k = ncu.NcuKernel(0, "k", "", "", {metrics.TENSOR_FLOP_METRICS["tf32"]: 2.0 * 256**3}, {})
    r = counters_run.build_result("gemm", "cublas", "256x256x256", "bf16", [k])
    row = {c.quantity: c for c in r.comparisons}["FLOPs (tensor cores)"]
    assert row.status == "agrees" and "tf32" in row.explanation


# --- ncu's failure modes -----------------------------------------------------------------------

def test_diagnose_permission_and_no_kernels_and_errors():
    with pytest.raises(ncu.NcuPermissionError, match="NVreg_RestrictProfilingToAdminUsers"):
        ncu.diagnose("==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU "
                     "Performance Counters on the target device 0.", returncode=1, command="ncu x")
    with pytest.raises(ncu.NoKernelsProfiledError, match="kernelprof_target"):
        ncu.diagnose("==PROF== Connected\n==WARNING== No kernels were profiled.\n", returncode=0, command="ncu x")
    with pytest.raises(ncu.NcuError, match="Failed to find metric"):
        ncu.diagnose("==ERROR== Failed to find metric sm__bogus", returncode=1, command="ncu x")
    ncu.diagnose(CAPTURE.read_text(), returncode=0, command="ncu x")  # the real capture is clean
    assert ncu.NcuPermissionError.exit_code == ncu.NoKernelsProfiledError.exit_code == 8


def _fake_ncu(tmp_path: Path, body: str) -> str:
    path = tmp_path / "ncu"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_run_ncu_with_a_fake_ncu(tmp_path):
    good = _fake_ncu(tmp_path, f"cat '{CAPTURE}'\n")
    run = ncu.run_ncu(ncu.build_command(good, ["gpu__time_duration.sum"], ["python", "x.py"]))
    assert [k.name for k in run.kernels] == ["nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_NNT"]
    none = _fake_ncu(tmp_path, "echo '==PROF== Connected to process 1'\necho '==WARNING== No kernels were profiled.'\n")
    with pytest.raises(ncu.NoKernelsProfiledError):
        ncu.run_ncu([none])
    perm = _fake_ncu(tmp_path, "echo '==ERROR== ERR_NVGPUCTRPERM - no permission' >&2\nexit 1\n")
    with pytest.raises(ncu.NcuPermissionError):
        ncu.run_ncu([perm])
    # An ==ERROR== line beside valid kernel rows (e.g. from a child process) keeps the kernels.
    noisy = _fake_ncu(tmp_path, f"cat '{CAPTURE}'\necho '==ERROR== something about process 999' >&2\n")
    run = ncu.run_ncu([noisy])
    assert len(run.kernels) == 1 and any("process 999" in m for m in run.messages)
    silent = _fake_ncu(tmp_path, "echo hello\nexit 3\n")
    with pytest.raises(ncu.NoKernelsProfiledError, match="exit code 3"):
        ncu.run_ncu([silent])


def test_target_error_is_raised_before_ncus_no_kernels(tmp_path):
    none = _fake_ncu(tmp_path, "echo '==WARNING== No kernels were profiled.'\n")

    def precheck():
        counters_run._raise_target_error({"ok": False, "error": "SDPA backend flash cannot run", "error_type": "NotSupportedError"})

    from kernelprof.errors import NotSupportedError

    with pytest.raises(NotSupportedError, match="flash cannot run"):
        ncu.run_ncu([none], precheck=precheck)


def test_command_never_touches_clocks_and_filters_the_range():
    cmd = ncu.build_command("/x/ncu", ["a.sum", "b.sum"], ["python", "-m", "t"])
    assert cmd[cmd.index("--clock-control") + 1] == "none"
    assert cmd[cmd.index("--nvtx-include") + 1] == "kernelprof_target/" and "--nvtx" in cmd
    assert cmd[cmd.index("--metrics") + 1] == "a.sum,b.sum"
    assert cmd[-3:] == ["python", "-m", "t"]
    assert "--csv" in cmd and cmd[cmd.index("--page") + 1] == "raw"


def test_no_ncu_on_the_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(ncu.ENV_NCU, raising=False)
    with pytest.raises(ncu.NcuNotFoundError, match="not on the PATH"):
        ncu.find_ncu()
    with pytest.raises(ncu.NcuNotFoundError, match="not found at"):
        ncu.find_ncu(str(tmp_path / "missing-ncu"))


def test_cli_without_ncu_exits_nonzero_with_one_line(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path), PYTHONPATH=str(ROOT))
    env.pop(ncu.ENV_NCU, None)
    r = subprocess.run([sys.executable, "-m", "kernelprof", "counters", "gemm", "--variant", "cublas"],
                       capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert r.returncode == 8
    assert "ncu" in r.stderr and "PATH" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,needle", [
    (["counters", "nosuchop"], "unknown op"),
    (["counters", "gemm", "--variant", "nope"], "unknown variant"),
    (["counters", "decode", "--shape", "b=16"], "lacks"),
    (["counters", "gemm", "--dtype", "int4"], "unknown dtype"),
])
def test_cli_bad_input_is_one_line(args, needle):
    r = subprocess.run([sys.executable, "-m", "kernelprof", *args], capture_output=True, text=True, timeout=120,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_target_reports_its_failure(tmp_path):
    from kernelprof.estimates.counters import target as counters_target
    from kernelprof.gpu.devices import cuda_available

    info = tmp_path / "info.json"
    code = counters_target.main(["--op", "gemm", "--variant", "nope", "--shape", "64x64x64", "--info-out", str(info)])
    doc = json.loads(info.read_text())
    assert code != 0 and doc["ok"] is False
    assert doc["error_type"] == ("ShapeError" if cuda_available() else "NoGPUError")
    from kernelprof.errors import KernelprofError

    with pytest.raises(KernelprofError, match="the profiled target failed"):
        counters_run._raise_target_error(doc)


# --- run files and rendering ---------------------------------------------------------------------

@pytest.fixture()
def wide_console(monkeypatch):
    """The CLI's console, 200 columns wide, recording what is printed."""
    from rich.console import Console

    import kernelprof.cli.counters as cli
    import kernelprof.cli.counters_view as view
    import kernelprof.cli.ncu_view as ncu_view

    console = Console(width=200, record=True, highlight=False)
    for module in (cli, view, ncu_view):  # the command and the two modules its tables come from
        monkeypatch.setattr(module, "console", console)
    return console


def test_save_load_render(gemm_result, tmp_path, wide_console):
    from kernelprof.cli.counters import render_counters

    path = save_run(tmp_path / "c.json", kind="counters", payload={"counters": gemm_result, "utilization": None},
                    environment={"test": True})
    run = load_run(path, kind="counters")
    c = run.payload["counters"]
    assert c["totals"]["tensor_flops"] == 2 * N**3
    assert [k["name"] for k in c["kernels"]] == ["nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_NNT"]
    # Only the requested metrics travel with each kernel, not ncu's ~500 device attributes.
    assert len(c["kernels"][0]["values"]) < 40
    with wide_console.capture() as cap:
        render_counters(run)
    text = cap.get()
    assert "nvjet_sm90" in text and "agrees" in text and "still in L2" in text and "re-read" in text


def test_utilization_fractions_and_rendering(wide_console):
    from kernelprof.cli.counters import render_counters
    from kernelprof.outputs.runfile import to_jsonable
    from kernelprof.estimates.utilization import UtilizationView, fractions_of_peak

    frac = fractions_of_peak(2 * N**3, 3 * N * N * 2, 1e-3, H100, "bf16")
    assert frac["flop_fraction"] == pytest.approx(2 * N**3 / 1e-3 / 989.4e12)
    assert frac["bandwidth_fraction"] == pytest.approx(3 * N * N * 2 / 1e-3 / 3.35e12)
    assert fractions_of_peak(1, 1, 1.0, "Some Future GPU", "bf16")["flop_fraction"] is None
    view = UtilizationView(op="gemm", variant="cublas", shape="4096x4096x4096", dtype="bf16", gpu_name=H100,
                           ramp_s=1.0, window_s=2.0, sample_hz=20.0, nvml_t_s=[0.0, 0.05], nvml_gpu_util_pct=[100, 100],
                           nvml_mem_util_pct=[40, 41], nvml_gpu_util_median_pct=100.0, nvml_mem_util_median_pct=40.5,
                           loop_calls=10, loop_time_per_call_s=1e-3, timing={"reps": 50, "cache": "flush"},
                           time_per_call_s=1e-3, flops=2 * N**3, min_bytes=3 * N * N * 2, **frac)
    with wide_console.capture() as cap:
        render_counters({"counters": None, "utilization": to_jsonable(view)})
    text = cap.get()
    assert "GPU utilization is not FLOP utilization" in text and "100 %" in text and "13.9 %" in text
