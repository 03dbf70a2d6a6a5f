"""The hostile-input table: what a new user might hand kernelprof, and what must come back.

Each case is a command line run through the real CLI (`kernelprof.cli.main.main(argv)`), on a
machine without a GPU, against fixture files built by `build_fixtures`. A case says the exit
status it must end with and, where the right answer is not an error, what its output must say
(`expect_re`, searched in stdout + stderr), so that a silently wrong answer is caught.

`classify` sorts one outcome into: clean (the expected status, one error sentence, no traceback,
inputs unchanged), wrong_error (a clean message but another status or several lines), traceback,
silently_wrong (exit 0 where an error or a warning was due, or an input file changed). The same
table measured the code before and after issue 14 (tests/data/hostile/before.json, after.json);
tests/test_hostile_inputs.py asserts every case is clean.

Exit statuses (README, kernelprof/errors.py): 0 ok, 1 some points failed, 2 usage / bad input,
3 no GPU, 4 NVML, 5 unsupported, 6 corrupt or old-version file, 7 measurement failed, 8 output not
writable, 70 internal error, 130 interrupted.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    exit: int                       # expected exit status
    expect_re: str | None = None    # must appear in stdout+stderr (for a warning or a right answer)
    inputs: tuple[str, ...] = field(default=())  # fixture names whose bytes must not change


def _w(p: Path, data: bytes | str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def _run_doc(kind: str, payload, **extra) -> dict:
    return {"format": "kernelprof-run", "version": 1, "kind": kind, "environment": {}, "payload": payload, **extra}


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def build_fixtures(root: Path) -> dict[str, Path]:
    """Write every hostile file under `root`; returns name -> path."""
    fx: dict[str, Path] = {}
    tr = REPO / "traces"

    def put(name: str, data: bytes | str, suffix: str = ".json") -> None:
        fx[name] = _w(root / f"{name}{suffix}", data)

    def put_doc(name: str, doc) -> None:
        put(name, json.dumps(doc))

    # ---- run files -------------------------------------------------------------------------
    put("empty", b"")
    put("not_json", "{not json")
    put("non_utf8", b"\xff\xfe\x00garbage\x80")
    put("json_list", "[1, 2, 3]")
    put("json_number", "42")
    put("json_string", '"kernelprof-run"')
    put_doc("no_format", {"version": 1, "kind": "kernel", "payload": {}, "environment": {}})
    for name, v in (("version_99", 99), ("version_true", True), ("version_str", "1"), ("version_0", 0),
                    ("version_neg", -1), ("version_float", 1.0), ("version_null", None)):
        put_doc(name, dict(_run_doc("kernel", {}), version=v))
    put_doc("kind_unknown", _run_doc("frobnicate", {}))
    put_doc("kind_none", _run_doc(None, {}))
    put_doc("payload_list", _run_doc("kernel", [1, 2]))
    put_doc("env_list", dict(_run_doc("kernel", {}), environment=[]))
    for kind in ("kernel", "compare", "profile", "sensor", "counters", "llm", "workload"):
        put_doc(f"{kind}_empty_payload", _run_doc(kind, {}))
        put_doc(f"{kind}_garbage_payload", _run_doc(kind, {"measurement": 3, "variants": [1], "summary": "x",
                                                           "phases": 7, "trace": None, "report": 1}))
    # arrays metadata
    npz = _npz_bytes(x=np.arange(3.0))
    sha = hashlib.sha256(npz).hexdigest()
    put("side_ok", npz, ".arrays.npz")
    put_doc("arrays_traversal", _run_doc("profile", {}, arrays={"file": "../../../../../../etc/passwd",
                                                                "sha256": "0" * 64, "names": ["x"]}))
    put_doc("arrays_abs", _run_doc("profile", {}, arrays={"file": "/etc/passwd", "sha256": "0" * 64, "names": ["x"]}))
    put_doc("arrays_file_int", _run_doc("profile", {}, arrays={"file": 5, "sha256": sha, "names": ["x"]}))
    put_doc("arrays_list", _run_doc("profile", {}, arrays=["side_ok.arrays.npz"]))
    put_doc("arrays_no_file", _run_doc("profile", {}, arrays={"sha256": sha, "names": ["x"]}))
    put_doc("arrays_missing_side", _run_doc("profile", {}, arrays={"file": "nope.arrays.npz", "sha256": sha,
                                                                   "names": ["x"]}))
    put_doc("arrays_bad_sha", _run_doc("profile", {}, arrays={"file": "side_ok.arrays.npz", "sha256": "0" * 64,
                                                              "names": ["x"]}))
    put_doc("arrays_names_missing", _run_doc("profile", {}, arrays={"file": "side_ok.arrays.npz", "sha256": sha,
                                                                    "names": ["trace.gpu0.samples_w", "y"]}))
    garbage = b"PK\x03\x04 this is not a zip at all" * 10
    put("side_garbage", garbage, ".arrays.npz")
    put_doc("arrays_garbage_npz", _run_doc("profile", {}, arrays={
        "file": "side_garbage.arrays.npz", "sha256": hashlib.sha256(garbage).hexdigest(), "names": ["x"]}))
    pbuf = io.BytesIO()
    np.save(pbuf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("x.npy", pbuf.getvalue())
    pickled = zbuf.getvalue()
    put("side_pickled", pickled, ".arrays.npz")
    put_doc("arrays_pickled_npz", _run_doc("profile", {}, arrays={
        "file": "side_pickled.arrays.npz", "sha256": hashlib.sha256(pickled).hexdigest(), "names": ["x"]}))
    put("raw_pickle", pickle.dumps({"format": "kernelprof-run"}))
    # truncated real run files
    for src in ("compare-attention-h100.json", "llm-llama-3.1-8b-b8-optimized.json",
                "workload-azure-conv-llama-3.1-8b.json", "sensor-h100.json", "demo-profile.json"):
        data = (tr / src).read_bytes()
        put("trunc_" + src.split(".")[0].replace("-", "_"), data[: len(data) // 2])
    # a real profile whose arrays file is swapped for another run's
    (root / "swap").mkdir()
    shutil.copy(tr / "demo-profile.json", root / "swap" / "demo-profile.json")
    shutil.copy(tr / "sensor-h100.arrays.npz", root / "swap" / "demo-profile.arrays.npz")
    fx["swapped"] = root / "swap" / "demo-profile.json"
    # valid copies, for output-path cases
    shutil.copy(tr / "compare-attention-h100.json", root / "compare_ok.json")
    fx["compare_ok"] = root / "compare_ok.json"
    fx["compare_png_in"] = _w(root / "compare_in.png", (tr / "compare-attention-h100.json").read_bytes())
    (root / "prof").mkdir()
    shutil.copy(tr / "demo-profile.json", root / "prof" / "demo-profile.json")
    shutil.copy(tr / "demo-profile.arrays.npz", root / "prof" / "demo-profile.arrays.npz")
    fx["profile_ok"] = root / "prof" / "demo-profile.json"
    fx["profile_ok_npz"] = root / "prof" / "demo-profile.arrays.npz"
    fx["sensor_ok"] = tr / "sensor-h100.json"

    # ---- sweep JSONL ---------------------------------------------------------------------------
    lines = (tr / "sweep-gemm-h100.jsonl").read_bytes().splitlines(keepends=True)
    put("sweep_ok", b"".join(lines), ".jsonl")
    put("jl_empty", b"", ".jsonl")
    put("jl_blank", b"\n\n  \n", ".jsonl")
    put("jl_non_utf8", lines[0] + b"\xff\xfe\x80\n", ".jsonl")
    put("jl_mid_garbage", lines[0] + b"{oops\n" + lines[1], ".jsonl")
    for name, bad in (("jl_list", b"[1, 2]\n"), ("jl_number", b"7\n"), ("jl_string", b'"x"\n'),
                      ("jl_null", b"null\n"), ("jl_true", b"true\n")):
        put(name, lines[0] + bad + lines[1], ".jsonl")
    rec0 = json.loads(lines[0])
    for name, mut in (("jl_v99", {"v": 99}), ("jl_v_true", {"v": True}), ("jl_v_str", {"v": "1"}),
                      ("jl_version_true", {"version": True}), ("jl_v0", {"v": 0}),
                      ("jl_key_int", {"key": 5}), ("jl_status_weird", {"status": "maybe"}),
                      ("jl_result_list", {"result": [1]}), ("jl_result_missing", {"result": None})):
        put(name, lines[0] + (json.dumps({**rec0, **mut}) + "\n").encode() + lines[1], ".jsonl")
    put("jl_torn_partial", b"".join(lines[:3]) + lines[3][:40], ".jsonl")
    put("jl_torn_complete", b"".join(lines[:3]) + lines[3].rstrip(b"\n"), ".jsonl")
    put("jl_torn_only", lines[0][:30], ".jsonl")
    put("jl_duplicate", b"".join(lines[:3]) + lines[1], ".jsonl")
    failed = json.dumps({**rec0, "status": "failed", "error": "out of memory", "result": None}) + "\n"
    put("jl_ok_then_failed", b"".join(lines[:2]) + failed.encode(), ".jsonl")
    put("jl_failed_only", failed, ".jsonl")
    put("jl_ok_no_result", (json.dumps({k: v for k, v in rec0.items() if k != "result"}) + "\n").encode(), ".jsonl")
    put("jl_result_garbage", (json.dumps({**rec0, "result": {"measurement": 1}}) + "\n").encode(), ".jsonl")
    put("jl_no_key", b'{"v": 1, "status": "ok"}\n', ".jsonl")
    put("jl_huge_line", b'{"v": 1, "key": "' + b"a" * (17 * 2**20) + b'"}\n', ".jsonl")
    wl = (tr / "workload-azure-conv-llama-3.1-8b.jsonl").read_bytes()
    put("workload_ok", wl, ".jsonl")
    wlines = wl.splitlines(keepends=True)
    put("wl_torn_complete", b"".join(wlines[:5]) + wlines[5].rstrip(b"\n"), ".jsonl")
    put("wl_duplicate", b"".join(wlines[:5]) + wlines[2], ".jsonl")
    put("wl_garbage_bin", wlines[0] + b'{"key": "32/8", "input_bin": "x", "output_bin": 8, "status": "ok"}\n',
        ".jsonl")
    put("wl_batch_zero", (json.dumps({**json.loads(wlines[0]), "batch": 0}) + "\n").encode(), ".jsonl")
    # a sweep of attention, to be resumed as gemm
    att = (tr / "sweep-attention-h100.jsonl").read_bytes()
    put("sweep_attention", att, ".jsonl")
    # files written with resume identity (each record carries its configuration)
    cfg_att = {"kind": "sweep", "sweep": "attention", "op": "attention"}
    put("sweep_attention_v2", b"".join((json.dumps({**json.loads(l), "v": 2, "config": cfg_att}) + "\n").encode()
                                       for l in att.splitlines()), ".jsonl")
    cfg_wl = {"kind": "workload", "trace": "azure-conv", "model": "llama-3.1-8b", "mode": "optimized"}
    put("workload_v2", b"".join((json.dumps({**json.loads(l), "v": 2, "config": cfg_wl}) + "\n").encode()
                                for l in wl.splitlines()), ".jsonl")

    # ---- sweep grids ---------------------------------------------------------------------------
    g = root / "grids"
    def grid(name: str, text: str | bytes) -> None:
        fx[name] = _w(g / f"{name}.toml", text)
    ok_shape = '"64x64x64"'
    grid("grid_ok", f'[sweep]\nop = "gemm"\nvariants = ["cublas"]\nshapes = [{ok_shape}]\n')
    grid("grid_non_utf8", b'[sweep]\nop = "gemm\xff\xfe"\n')
    grid("grid_bad_toml", "[sweep\nop = gemm\n")
    grid("grid_empty", "")
    grid("grid_no_sweep", '[other]\nop = "gemm"\n')
    grid("grid_extra_table", f'[sweep]\nop = "gemm"\nshapes = [{ok_shape}]\n[extra]\nx = 1\n')
    grid("grid_no_op", f"[sweep]\nshapes = [{ok_shape}]\n")
    grid("grid_op_unknown", f'[sweep]\nop = "conv"\nshapes = [{ok_shape}]\n')
    grid("grid_op_int", f"[sweep]\nop = 3\nshapes = [{ok_shape}]\n")
    grid("grid_unknown_key", f'[sweep]\nop = "gemm"\nshapes = [{ok_shape}]\ncolour = "red"\n')
    grid("grid_variant_unknown", f'[sweep]\nop = "gemm"\nvariants = ["nope"]\nshapes = [{ok_shape}]\n')
    grid("grid_variants_str", f'[sweep]\nop = "gemm"\nvariants = "cublas"\nshapes = [{ok_shape}]\n')
    grid("grid_dtypes_bad", f'[sweep]\nop = "gemm"\ndtypes = ["int3"]\nshapes = [{ok_shape}]\n')
    grid("grid_dtypes_str", f'[sweep]\nop = "gemm"\ndtypes = "bf16"\nshapes = [{ok_shape}]\n')
    grid("grid_dtype_attn_fp8", '[sweep]\nop = "attention"\ndtypes = ["fp8"]\nshapes = ["b=1,h=2,s=64,d=64"]\n')
    grid("grid_shapes_str", '[sweep]\nop = "gemm"\nshapes = "64x64x64"\n')
    grid("grid_shapes_int", '[sweep]\nop = "gemm"\nshapes = [64]\n')
    grid("grid_shape_bad", '[sweep]\nop = "gemm"\nshapes = ["64x64"]\n')
    grid("grid_shape_huge", '[sweep]\nop = "gemm"\nshapes = ["1000000000000x2x2"]\n')
    grid("grid_no_shapes", '[sweep]\nop = "gemm"\n')
    grid("grid_grid_not_list", '[sweep]\nop = "attention"\n[sweep.grid]\nb = 4\nh = [32]\ns = [64]\nd = [64]\n')
    grid("grid_grid_empty_list", '[sweep]\nop = "attention"\n[sweep.grid]\nb = []\nh = [32]\ns = [64]\nd = [64]\n')
    grid("grid_grid_bad_d", '[sweep]\nop = "attention"\n[sweep.grid]\nb = [1]\nh = [2]\ns = [64]\nd = [100]\n')
    grid("grid_grid_float", '[sweep]\nop = "attention"\n[sweep.grid]\nb = [1.5]\nh = [2]\ns = [64]\nd = [64]\n')
    grid("grid_grid_table", '[sweep]\nop = "attention"\n[sweep.grid]\nb = [{x = 1}]\nh = [2]\ns = [64]\nd = [64]\n')
    big = ", ".join(str(i) for i in range(1, 51))
    grid("grid_too_many", f'[sweep]\nop = "gemm"\n[sweep.grid]\nm = [{big}]\nn = [{big}]\nk = [{big}]\n')
    grid("grid_huge_file", '[sweep]\nop = "gemm"\nshapes = ["64x64x64"]\n' + "# pad\n" * (2 * 2**20))
    grid("grid_name_int", f'[sweep]\nname = 5\nop = "gemm"\nshapes = [{ok_shape}]\n')
    fx["grid_dir"] = g

    # ---- workload CSVs -------------------------------------------------------------------------
    c = root / "csv"
    def csvf(name: str, text: str | bytes) -> None:
        fx[name] = _w(c / f"{name}.csv", text)
    csvf("csv_ok", "input_len,output_len\n100,10\n300,40\n")
    csvf("csv_non_utf8", b"input_len,output_len\n100,10\n\xff\xfe,\x80\n")
    csvf("csv_empty", "")
    csvf("csv_header_only", "input_len,output_len\n")
    csvf("csv_wrong_cols", "a,b\n1,2\n")
    csvf("csv_negative", "input_len,output_len\n-5,10\n")
    csvf("csv_zero", "input_len,output_len\n0,10\n")
    csvf("csv_float", "input_len,output_len\n10.5,10\n")
    csvf("csv_text", "input_len,output_len\nten,10\n")
    csvf("csv_missing_cell", "input_len,output_len\n10\n")
    csvf("csv_huge_len", "input_len,output_len\n100000000000000000000,10\n")
    csvf("csv_unicode_digits", "input_len,output_len\n\u0661\u0662,10\n")
    csvf("csv_binary", b"\x00\x01\x02\x03" * 100)
    csvf("csv_bom", "\ufeffinput_len,output_len\n100,10\n")
    csvf("csv_too_many_rows", "input_len,output_len\n" + "100,10\n" * 1_000_001)
    fx["csv_dir"] = c
    return fx


# Shapes every op must refuse before it looks for a GPU.
BAD_SHAPES = {
    "gemm": ["0x64x64", "-1x64x64", "64x64", "64x64x64x64", "1e3x64x64", "\uff16\uff14x64x64", "\u0664x64x64",
             "1048577x64x64", "1000000000000x2x2", "x", "", "m=64,n=64", "m=64,n=64,k=64,z=1", "m=a,n=2,k=3",
             "64 x 64 x abc"],
    "attention": ["b=4,h=32,s=1024,d=100", "b=4,h=32,s=1024,d=0", "b=4,h=32,s=1024", "b=4,h=30,kv=8,s=1024,d=128",
                  "b=4,h=32,s=1024,d=128,causal=maybe", "b=4,b=4,h=32,s=1024,d=128", "b=4,h=32,s=1048577,d=128",
                  "b=\u0664,h=32,s=1024,d=128", "b=4,h=32,s=1024,d=128,colour=red", "b=-4,h=32,s=1024,d=128",
                  "b=4,h=32,s=10000000000000,d=128"],
    "decode": ["b=16,h=32,kv=8,ctx=8192,d=100", "b=16,h=32,kv=8,d=128", "b=16,h=32,kv=7,ctx=8192,d=128",
               "b=16,h=32,kv=8,ctx=0,d=128", "b=16,h=32,kv=8,ctx=99999999999,d=128", "b=\uff11,h=32,kv=8,ctx=64,d=128",
               "b=16,h=32,kv=8,ctx=8192,d=128,max=10", "b=16,h=32,kv=8,ctx=8192,d=128,sparkly"],
}
BAD_DTYPES = ["int3", "fp64", "", "float128", "bf16 ", "bfloat17"]


def cases(fx: dict[str, Path]) -> list[Case]:
    f = {k: str(v) for k, v in fx.items()}
    out: list[Case] = []

    def add(name: str, argv: list[str], code: int, expect_re: str | None = None, inputs: tuple[str, ...] = ()):
        out.append(Case(name, tuple(argv), code, expect_re, inputs))

    # shapes and dtypes: refused with status 2 before any GPU check
    for op, shapes in BAD_SHAPES.items():
        for i, s in enumerate(shapes):
            add(f"kernel-{op}-shape-{i}", ["kernel", op, "--shape", s], 2)
            add(f"compare-{op}-shape-{i}", ["compare", op, "--shape", s], 2)
        for i, s in enumerate(shapes[:4]):
            add(f"utilization-{op}-shape-{i}", ["utilization", op, "--shape", s], 2)
            add(f"counters-{op}-shape-{i}", ["counters", op, "--shape", s], 2)
    for i, d in enumerate(BAD_DTYPES):
        add(f"kernel-dtype-{i}", ["kernel", "gemm", "--dtype", d], 2)
        add(f"compare-dtype-{i}", ["compare", "gemm", "--dtype", d], 2)
    add("utilization-dtype", ["utilization", "gemm", "--dtype", "int3"], 2)
    add("counters-dtype", ["counters", "gemm", "--dtype", "int3"], 2)
    add("kernel-attention-fp8", ["kernel", "attention", "--dtype", "fp8"], 2)
    add("kernel-op-unknown", ["kernel", "conv"], 2)
    add("kernel-variant-unknown", ["kernel", "gemm", "--variant", "magic"], 2)
    for opt, val in (("--precision", "0"), ("--precision", "nan"), ("--precision", "-1"), ("--run-s", "-1"),
                     ("--max-seconds", "0"), ("--max-run-s", "inf"), ("--burst-s", "-0.1"), ("--device", "-1")):
        add(f"kernel-opt{opt}={val}", ["kernel", "gemm", opt, val], 2)
    add("kernel-valid-no-gpu", ["kernel", "gemm", "--shape", "64x64x64"], 3)
    add("compare-one-variant", ["compare", "gemm", "--variants", "cublas"], 2)
    add("compare-variant-unknown", ["compare", "gemm", "--variants", "cublas,nope"], 2)
    add("compare-baseline-unknown", ["compare", "gemm", "--variants", "cublas,triton", "--baseline", "x"], 2)
    add("compare-from-sweep-missing", ["compare", "gemm", "--from-sweep", "/nonexistent/s.jsonl"], 2)
    add("compare-from-sweep-corrupt", ["compare", "gemm", "--from-sweep", f["jl_mid_garbage"],
                                       "--shape", "1024x1024x1024"], 6, inputs=("jl_mid_garbage",))
    add("compare-from-sweep-duplicate", ["compare", "gemm", "--from-sweep", f["jl_duplicate"], "--shape",
                                         "1024x1024x1024", "--out", f"{fx['csv_dir']}/../cmp_dup.json"], 0,
        expect_re=r"(?i)duplicate", inputs=("jl_duplicate",))
    add("compare-valid-no-gpu", ["compare", "gemm", "--shape", "64x64x64"], 3)

    # sweeps
    for name in [k for k in fx if k.startswith("grid_") and k not in ("grid_ok", "grid_dir")]:
        add(f"sweep-{name}", ["sweep", "--grid", f[name]], 2, inputs=(name,))
    add("sweep-grid-missing", ["sweep", "--grid", "/nonexistent/g.toml"], 2)
    add("sweep-grid-is-dir", ["sweep", "--grid", f["grid_dir"]], 2)
    add("sweep-dtype-flag", ["sweep", "--suite", "gemm", "--dtype", "fp16"], 2)
    add("sweep-precision-0", ["sweep", "--suite", "gemm", "--precision", "0"], 2)
    add("sweep-out-is-dir", ["sweep", "--grid", f["grid_ok"], "--out", f["grid_dir"]], 2)
    add("sweep-resume-old-other-suite", ["sweep", "--suite", "gemm", "--resume", "--out", f["sweep_attention"]], 6,
        expect_re=r"(?i)config", inputs=("sweep_attention",))
    add("sweep-resume-other-suite", ["sweep", "--suite", "gemm", "--resume", "--out", f["sweep_attention_v2"]], 2,
        expect_re=r"(?i)differ", inputs=("sweep_attention_v2",))
    add("sweep-resume-old-file", ["sweep", "--suite", "gemm", "--resume", "--out", f["sweep_ok"]], 6,
        expect_re=r"(?i)config", inputs=("sweep_ok",))
    add("sweep-resume-corrupt", ["sweep", "--suite", "gemm", "--resume", "--out", f["jl_mid_garbage"]], 6,
        inputs=("jl_mid_garbage",))
    add("sweep-exists-no-resume", ["sweep", "--suite", "gemm", "--out", f["sweep_ok"]], 2, inputs=("sweep_ok",))
    add("sweep-valid-no-gpu", ["sweep", "--grid", f["grid_ok"], "--out", str(Path(f["grid_dir"]).parent / "new.jsonl")], 3)

    # report of run files
    run_names = [k for k in fx if not k.startswith(("jl_", "wl_", "grid_", "csv_", "side_", "sweep_", "workload_"))
                 and k not in ("compare_ok", "compare_png_in", "profile_ok", "profile_ok_npz", "sensor_ok", "swapped")]
    for name in run_names:
        add(f"report-{name}", ["report", f[name]], 6, inputs=(name,))
    add("report-swapped-arrays", ["report", f["swapped"]], 6, inputs=("swapped",))
    # --csv and --by class read the same payloads: a corrupt one is a corrupt-file error there too
    # (other kinds' CSV is their payload flattened as it is, so a garbage payload there is not an error)
    for name in ("profile_garbage_payload", "llm_empty_payload", "llm_garbage_payload"):
        add(f"report-csv-{name}", ["report", "--csv", f[name]], 6, inputs=(name,))
    add("report-by-class-profile_garbage_payload", ["report", "--by", "class", f["profile_garbage_payload"]], 6,
        inputs=("profile_garbage_payload",))
    for name in ("jl_mid_garbage", "jl_non_utf8", "jl_list"):
        add(f"report-csv-{name}", ["report", "--csv", f[name]], 6, inputs=(name,))
    add("report-by-class-no-kernels", ["report", "--by", "class", f["profile_ok"]], 2, expect_re=r"no kernels",
        inputs=("profile_ok",))
    add("report-missing", ["report", "/nonexistent/run.json"], 6)
    add("report-dir", ["report", f["grid_dir"]], 6)
    add("report-json-version-99", ["report", "--json", f["version_99"]], 6)
    for name in ("arrays_traversal", "arrays_pickled_npz", "arrays_names_missing", "kernel_garbage_payload",
                 "compare_empty_payload", "profile_garbage_payload", "version_true"):
        add(f"plot-{name}", ["plot", f[name], "--out", f"{f[name]}.out.png"], 6, inputs=(name,))
    # report of JSONL
    for name in ("jl_non_utf8", "jl_mid_garbage", "jl_list", "jl_number", "jl_string", "jl_null", "jl_true",
                 "jl_v99", "jl_v_true", "jl_v_str", "jl_version_true", "jl_v0", "jl_key_int", "jl_status_weird",
                 "jl_result_list", "jl_result_missing", "jl_ok_no_result", "jl_result_garbage", "jl_no_key",
                 "jl_huge_line", "wl_garbage_bin", "wl_batch_zero"):
        add(f"report-{name}", ["report", f[name]], 6, inputs=(name,))
        add(f"plot-{name}", ["plot", f[name], "--out", f"{f[name]}.png"], 6, inputs=(name,))
    for name in ("jl_empty", "jl_blank", "jl_torn_only"):
        add(f"report-{name}", ["report", f[name]], 6, inputs=(name,))
    add("report-jl-torn-partial", ["report", f["jl_torn_partial"]], 0, expect_re=r"(?i)torn", inputs=("jl_torn_partial",))
    add("report-jl-torn-complete", ["report", "--json", f["jl_torn_complete"]], 0,
        expect_re=r"(?s)(?i)torn.*|.*torn", inputs=("jl_torn_complete",))
    add("report-jl-duplicate", ["report", f["jl_duplicate"]], 0, expect_re=r"(?i)duplicate", inputs=("jl_duplicate",))
    add("report-jl-ok-then-failed", ["report", f["jl_ok_then_failed"]], 0, expect_re=r"(?i)later.*failed|failed.*later",
        inputs=("jl_ok_then_failed",))
    add("report-wl-torn-complete", ["report", f["wl_torn_complete"]], 0, expect_re=r"(?i)torn", inputs=("wl_torn_complete",))
    add("report-wl-duplicate", ["report", f["wl_duplicate"]], 0, expect_re=r"(?i)duplicate", inputs=("wl_duplicate",))
    # workload JSONLs became plottable (issue 16): a J-per-request heatmap by bin
    add("plot-workload-jsonl", ["plot", f["workload_ok"], "--out", f"{f['workload_ok']}.png"], 0,
        expect_re=r"wrote \S+\.png", inputs=("workload_ok",))
    add("report-sweep-ok", ["report", f["sweep_ok"]], 0, inputs=("sweep_ok",))

    # outputs
    add("plot-out-is-input", ["plot", f["compare_ok"], "--out", f["compare_ok"]], 2, inputs=("compare_ok",))
    add("plot-out-is-png-input", ["plot", f["compare_png_in"], "--out", f["compare_png_in"]], 2,
        inputs=("compare_png_in",))
    add("plot-out-is-arrays", ["plot", f["profile_ok"], "--out", f["profile_ok_npz"]], 2,
        inputs=("profile_ok", "profile_ok_npz"))
    add("plot-out-unwritable", ["plot", f["compare_ok"], "--out", "/proc/kernelprof-test/x.png"], 8,
        inputs=("compare_ok",))
    add("plot-out-no-png", ["plot", f["compare_ok"], "--out", f"{f['compare_ok']}.plot"], 0,
        expect_re=r"wrote \S+\.plot\.png", inputs=("compare_ok",))
    # sensor runs became plottable (issue 16): the figure is written, the input untouched
    add("plot-sensor-kind", ["plot", f["sensor_ok"], "--out", f"{f['compare_ok']}.sensor.png"], 0,
        expect_re=r"wrote \S+\.sensor\.png", inputs=("sensor_ok",))
    add("plot-missing", ["plot", "/nonexistent/x.json"], 6)

    # workload
    for name in [k for k in fx if k.startswith("csv_") and k not in ("csv_ok", "csv_dir", "csv_bom")]:
        add(f"workload-{name}", ["workload", "--trace", f[name], "--bins-only"], 2, inputs=(name,))
        add(f"workload-run-{name}", ["workload", "--trace", f[name]], 2, inputs=(name,))
    add("workload-csv-bom", ["workload", "--trace", f["csv_bom"], "--bins-only"], 0, expect_re=r"requests")
    add("workload-csv-dir", ["workload", "--trace", f["csv_dir"], "--bins-only"], 2)
    add("workload-trace-unknown", ["workload", "--trace", "azure-chat", "--bins-only"], 2)
    add("workload-max-batch-0", ["workload", "--trace", "azure-conv", "--max-batch", "0"], 2)
    add("workload-max-batch-neg", ["workload", "--trace", "azure-conv", "--max-batch", "-3"], 2)
    add("workload-model-unknown", ["workload", "--trace", "azure-conv", "--model", "gpt-9"], 2)
    for what, extra in (("trace", ["--trace", "azure-code"]), ("model", ["--trace", "azure-conv", "--model", "tiny"]),
                        ("mode", ["--trace", "azure-conv", "--mode", "eager"])):
        add(f"workload-resume-other-{what}", ["workload", *extra, "--resume", "--out", f["workload_ok"]], 6,
            expect_re=r"(?i)config|differ", inputs=("workload_ok",))
    for what, extra in (("trace", ["--trace", "azure-code"]), ("model", ["--trace", "azure-conv", "--model", "tiny"]),
                        ("mode", ["--trace", "azure-conv", "--mode", "eager"])):
        add(f"workload-resume-v2-other-{what}", ["workload", *extra, "--resume", "--out", f["workload_v2"]], 2,
            expect_re=r"(?i)differ", inputs=("workload_v2",))
    add("workload-resume-corrupt", ["workload", "--trace", "azure-conv", "--resume", "--out", f["jl_mid_garbage"]], 6,
        inputs=("jl_mid_garbage",))
    add("workload-valid-no-gpu", ["workload", "--trace", f["csv_ok"], "--out",
                                  str(Path(f["csv_dir"]) / "new-wl.jsonl")], 3)

    # llm
    for opt, val in (("--batch", "0"), ("--batch", "-1"), ("--input", "0"), ("--output", "0"),
                     ("--input", "1000000000"), ("--output", "-5"), ("--mode", "turbo"), ("--min-inrun-s", "-1"),
                     ("--batch", "100000")):
        add(f"llm{opt}={val}", ["llm", opt, val], 2)
    add("llm-model-unknown", ["llm", "--model", "gpt-9"], 2)
    add("llm-valid-no-gpu", ["llm", "--model", "tiny", "--batch", "1", "--input", "8", "--output", "2"], 3)

    # counters / calibrate from files
    for name in ("not_json", "non_utf8", "version_99", "kernel_empty_payload", "sensor_garbage_payload"):
        add(f"counters-energy-from-{name}", ["counters", "--energy", "--from", f[name]], 6, inputs=(name,))
        add(f"calibrate-from-{name}", ["calibrate", "--from", f[name]], 6, inputs=(name,))
    add("counters-energy-from-missing", ["counters", "--energy", "--from", "/nonexistent/s.json"], 6)
    add("calibrate-from-missing", ["calibrate", "--from", "/nonexistent/c.json"], 6)
    return out


def file_hashes(fx: dict[str, Path], names: tuple[str, ...]) -> dict[str, str | None]:
    out = {}
    for n in names:
        p = fx[n]
        out[n] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
    return out
