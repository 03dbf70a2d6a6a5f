#!/usr/bin/env python
"""Benchmark the subject kernels against the vendor implementations on one CUDA GPU.

    PYTHONPATH=. python benchmarks/kernels.py [--quick] [--energy]

For every case: check each measured variant once against a float64 reference (relative norm error
printed and recorded), time it with triton.testing.do_bench (median, p20 and p80 of CUDA-event
times, L2 flushed before each call), and report TFLOP/s (GEMM, attention) or TB/s of minimum bytes
(decode, copy). Writes benchmarks/results/kernels-<gpu>.json through kernelprof.outputs.benchfile, and, when
$OUT is set, a full log and a copy of the results file there. A case that fails (OOM, unsupported)
is recorded under notes.failures and the others go on. `--energy` adds issue 17's energy cases at the
headline shapes (benchmarks/energy_verdicts.py's: `energy/<case>/<variant>/energy_ratio`, settled J/call
of each side and the verdict) beside the time cases, in the same file.
"""
from __future__ import annotations

import argparse
import statistics
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from kernelprof.outputs.benchfile import Case, write_results  # noqa: E402
from kernelprof.errors import NotSupportedError  # noqa: E402

LOG_LINES: list[str] = []


def log(msg: str = "") -> None:
    print(msg, flush=True)
    LOG_LINES.append(msg)


def do_bench_ms(fn, warmup_ms: int, rep_ms: int) -> tuple[float, float, float]:
    """(median, p20, p80) in ms. triton.testing.do_bench has the same signature in 3.6 and 3.9:
    do_bench(fn, warmup=25, rep=100, grad_to_none=None, quantiles=None, return_mode='mean'); with
    quantiles it returns them in order (the median equals return_mode='median')."""
    from triton.testing import do_bench

    q = do_bench(fn, warmup=warmup_ms, rep=rep_ms, quantiles=[0.5, 0.2, 0.8])
    return float(q[0]), float(q[1]), float(q[2])


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.to(torch.float64)
    return float((out.to(torch.float64) - ref).norm() / ref.norm())


def dtype_tag(dtype: torch.dtype) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}.get(
        dtype, "fp8" if "float8" in str(dtype) else str(dtype))


def autotuned_config(kernel) -> str | None:
    best = getattr(kernel, "best_config", None)
    return str(best) if best is not None else None


class Bench:
    def __init__(self, quick: bool):
        self.quick = quick
        self.warmup = 10 if quick else 25
        self.rep = 50 if quick else 100
        self.cases: list[Case] = []
        self.failures: list[dict] = []
        self.table: list[tuple] = []

    def fail(self, name: str, exc: BaseException) -> None:
        kind = "unsupported" if isinstance(exc, NotSupportedError) else type(exc).__name__
        msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else kind
        log(f"  FAILED {name}: {kind}: {msg}")
        if not isinstance(exc, NotSupportedError):
            LOG_LINES.append(traceback.format_exc())
        self.failures.append({"name": name, "error": kind, "message": msg})
        torch.cuda.empty_cache()

    def measure(self, name: str, fn, ref: torch.Tensor | None, rtol: float, work: float, unit: str) -> dict | None:
        """Check fn() against ref once, then time it. work: FLOPs (unit 'tflops') or bytes ('tb_s')."""
        try:
            out = fn()
            torch.cuda.synchronize()
            err = rel_err(out, ref) if ref is not None else None
            del out
            ms, p20, p80 = do_bench_ms(fn, self.warmup, self.rep)
        except Exception as exc:  # noqa: BLE001 - one case must not lose the others
            self.fail(name, exc)
            return None
        value = work / (ms * 1e-3) / 1e12
        ok = err is None or err < rtol
        flag = "" if ok else f"  <-- rel err above {rtol:.1e}"
        err_txt = "      -" if err is None else f"{err:.2e}"
        log(f"  {name:60s} {ms * 1e3:10.1f} us  {value:8.1f} {unit:5s} rel_err {err_txt}{flag}")
        return {"ms": ms, "p20_ms": p20, "p80_ms": p80, "value": value, "rel_err": err, "correct": ok}

    def add(self, name: str, metric: str, r: dict, baseline: str | None = None, base: dict | None = None,
            **extra) -> None:
        ex = {"time_ms": r["ms"], "p20_ms": r["p20_ms"], "p80_ms": r["p80_ms"], "correct": r["correct"]}
        if "rounds_ms" in r:
            ex["rounds_ms"] = r["rounds_ms"]
        if r["rel_err"] is not None:
            ex["rel_err"] = r["rel_err"]
        ex.update({k: v for k, v in extra.items() if v is not None})
        case = Case(name=name, metric=metric, value=round(r["value"], 4),
                    baseline=baseline if base else None,
                    baseline_value=round(base["value"], 4) if base else None, extra=ex)
        self.cases.append(case)
        self.table.append((name, metric, case.value, baseline if base else "", case.baseline_value, case.ratio))


def paired_rounds(b: Bench, fns: dict, rounds: int = 6) -> dict[str, list[float]]:
    """Median do_bench times of each fn over `rounds`, the order reversed every other round."""
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        for n in (names if i % 2 == 0 else names[::-1]):
            times[n].append(do_bench_ms(fns[n], b.warmup, b.rep)[0])
    return times


# ------------------------------------------------------------------------------------------------ GEMM
def bench_gemm(b: Bench) -> None:
    from kernels import get_op
    from kernels.gemm import gemm_reference
    from kernels.gemm import triton_gemm as tg

    op = get_op("gemm")
    shapes = ["4096x4096x4096", "8192x8192x8192", "1024x1024x1024", "16x4096x4096"]
    dtypes = [torch.bfloat16]
    if not b.quick:
        dtypes.append(torch.float16)
    fp8 = getattr(torch, "float8_e4m3fn", None)
    if fp8 is not None and torch.cuda.get_device_capability() >= (8, 9):
        dtypes.append(fp8)
    for dtype in dtypes:
        # bf16 at every shape (the targets); fp16 at 4096^3; fp8 at the two large cubes.
        for text in shapes if dtype == torch.bfloat16 else shapes[:1] if dtype == torch.float16 else shapes[:2]:
            shape = op.parse_shape(text)
            tag = dtype_tag(dtype)
            log(f"gemm {tag} {text}")
            try:
                inputs = op.make_inputs(shape, dtype, torch.device("cuda"), 0)
                ref = gemm_reference(*inputs)
            except Exception as exc:  # noqa: BLE001
                b.fail(f"gemm/{tag}/{text}", exc)
                continue
            # bf16 output (also for fp8) or fp16: 2 unit roundoffs of the output dtype
            rtol = 2 * (2.0**-11 if dtype == torch.float16 else 2.0**-8)
            flops = op.flops(shape)
            results = {}
            for name in ("cublas", "triton", "triton-persistent"):
                if name not in op.variants:
                    continue
                fn = op.variants[name]
                results[name] = b.measure(f"gemm/{tag}/{text}/{name}", lambda fn=fn: fn(*inputs), ref, rtol, flops,
                                          "tflops")
            # The card is power-capped at these sizes and its clocks drift over a run: time the
            # variants again in rounds whose order alternates (ABBA), and report the medians.
            ok = {n: r for n, r in results.items() if r is not None}
            if len(ok) > 1 and not b.quick:
                rounds = paired_rounds(b, {n: (lambda fn=op.variants[n]: fn(*inputs)) for n in ok})
                for n, times in rounds.items():
                    ms = statistics.median(times)
                    ok[n].update(ms=ms, value=flops / (ms * 1e-3) / 1e12, rounds_ms=times)
            base = results.get("cublas")
            for name, r in results.items():
                if r is None:
                    continue
                cfg = {"triton": autotuned_config(tg._gemm_tuned),
                       "triton-persistent": autotuned_config(tg._persistent_tuned)}.get(name)
                if name == "cublas":
                    b.add(f"gemm/{tag}/{text}/cublas", "tflops", r)
                else:
                    b.add(f"gemm/{tag}/{text}/{name}", "tflops", r, "cublas", base, config=cfg)
            inputs = ref = None  # free before the next shape
            torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------- attention
def bench_attention(b: Bench) -> None:
    from kernels import get_op
    from kernels.attention import attention_eager
    from kernels.attention import triton_flash as tf

    op = get_op("attention")
    shapes = ["b=4,h=32,s=4096,d=128", "b=4,h=32,s=4096,d=128,causal"]
    if not b.quick:
        shapes += ["b=4,h=32,kv=8,s=4096,d=128,causal", "b=8,h=16,s=2048,d=64,causal"]
    for text in shapes:
        shape = op.parse_shape(text)
        dtype = torch.bfloat16
        log(f"attention bf16 {text}")
        try:
            inputs = op.make_inputs(shape, dtype, torch.device("cuda"), 0)
            q, k, v, causal = inputs
            # float64 reference for the first sequence only (the score matrix of all 4 would be 17 GB)
            ref0 = attention_eager(q[:1].double(), k[:1].double(), v[:1].double(), causal)
        except Exception as exc:  # noqa: BLE001
            b.fail(f"attention/bf16/{text}", exc)
            continue
        flops = op.flops(shape)
        rtol = 4 * 2.0**-8  # output and P rounded to bf16

        results = {}
        names = ["sdpa-flash", "triton", "triton-tma", "sdpa-cudnn", "sdpa-efficient"]
        if not b.quick:
            names.append("eager")
        for name in names:
            if name not in op.variants:
                continue
            fn = op.variants[name]
            results[name] = _measure_attention(b, text, name, fn, inputs, ref0, rtol, flops)
        base = results.get("sdpa-flash")
        cudnn = results.get("sdpa-cudnn")
        for name, r in results.items():
            if r is None:
                continue
            if name == "sdpa-flash":
                b.add(f"attention/bf16/{text}/sdpa-flash", "tflops", r)
            elif name in ("triton", "triton-tma"):
                b.add(f"attention/bf16/{text}/{name}", "tflops", r, "sdpa-flash", base,
                      config=autotuned_config(tf._attn_tuned),
                      sdpa_cudnn_tflops=round(cudnn["value"], 4) if cudnn else None,
                      ratio_vs_cudnn=round(r["value"] / cudnn["value"], 4) if cudnn else None)
            else:
                b.add(f"attention/bf16/{text}/{name}", "tflops", r, "sdpa-flash", base)
        inputs = q = k = v = ref0 = None  # free before the next shape
        torch.cuda.empty_cache()


def _measure_attention(b: Bench, text, name, fn, inputs, ref0, rtol, flops):
    """Check the first sequence of fn's output against ref0, then time the whole call."""
    label = f"attention/bf16/{text}/{name}"
    try:
        out = fn(*inputs)
        torch.cuda.synchronize()
        err = rel_err(out[:1], ref0)
        del out
        torch.cuda.empty_cache()
        # The eager baseline is ~100x slower: fewer repetitions keep the run short.
        rep = 30 if name == "eager" else b.rep
        ms, p20, p80 = do_bench_ms(lambda: fn(*inputs), b.warmup if name != "eager" else 5, rep)
    except Exception as exc:  # noqa: BLE001
        b.fail(label, exc)
        return None
    value = flops / (ms * 1e-3) / 1e12
    ok = err < rtol
    flag = "" if ok else f"  <-- rel err above {rtol:.1e}"
    log(f"  {label:60s} {ms * 1e3:10.1f} us  {value:8.1f} tflops rel_err {err:.2e}{flag}")
    return {"ms": ms, "p20_ms": p20, "p80_ms": p80, "value": value, "rel_err": err, "correct": ok}


# ---------------------------------------------------------------------------------------------- decode
def bench_decode(b: Bench) -> None:
    from kernels import get_op
    from kernels.decode import decode_attention, decode_eager, decode_sdpa, resolve_decode_config

    op = get_op("decode")
    shapes = ["b=16,h=32,kv=8,ctx=8192,d=128", "b=1,h=32,kv=8,ctx=32768,d=128", "b=64,h=32,kv=8,ctx=1024,d=128"]
    if not b.quick:
        shapes.append("b=16,h=32,kv=8,ctx=8192,d=128,mixed")
    for text in shapes:
        shape = op.parse_shape(text)
        dtype = torch.bfloat16
        log(f"decode bf16 {text}")
        try:
            inputs = op.make_inputs(shape, dtype, torch.device("cuda"), 0)
            q, k, v, lengths, mask = inputs
            ref = decode_eager(q.double(), k.double(), v.double(), lengths)
        except Exception as exc:  # noqa: BLE001
            b.fail(f"decode/bf16/{text}", exc)
            continue
        nbytes = op.min_bytes(shape, dtype)
        rtol = 4 * 2.0**-8
        sdpa_results = {}
        for backend in ("flash", "cudnn", "efficient", "math"):
            sdpa_results[backend] = b.measure(
                f"decode/bf16/{text}/sdpa-{backend}",
                lambda backend=backend: decode_sdpa(q, k, v, lengths, mask, backend=backend), ref, rtol, nbytes, "tb_s")
        ran = {k_: r for k_, r in sdpa_results.items() if r is not None}
        best_name, best = (max(ran.items(), key=lambda kv: kv[1]["value"]) if ran else (None, None))
        baseline = f"sdpa-{best_name}" if best_name else None
        triton_rows = {
            "triton-splitk": b.measure(f"decode/bf16/{text}/triton-splitk",
                                       lambda: op.variants["triton-splitk"](*inputs), ref, rtol, nbytes, "tb_s"),
            "triton-nosplit": b.measure(f"decode/bf16/{text}/triton-nosplit",
                                        lambda: op.variants["triton-nosplit"](*inputs), ref, rtol, nbytes, "tb_s"),
        }
        for name, r in triton_rows.items():
            if r is not None:
                cfg, _ = resolve_decode_config(shape.batch, shape.q_heads, shape.kv_heads, shape.cache_len,
                                               shape.head_dim, q.device,
                                               num_splits=1 if name == "triton-nosplit" else None)
                b.add(f"decode/bf16/{text}/{name}", "tb_s", r, "sdpa-best", best, sdpa_best_backend=baseline,
                      num_splits=cfg.num_splits, config=cfg.to_json())
        for backend, r in sdpa_results.items():
            if r is not None:
                b.add(f"decode/bf16/{text}/sdpa-{backend}", "tb_s", r)
        if not b.quick and text == shapes[0]:
            # How the split count moves bandwidth (benchmarks/decode_tune.py tunes the dispatcher).
            for n in (2, 4, 8, 16, 32):
                r = b.measure(f"decode/bf16/{text}/triton-splitk-s{n}",
                              lambda n=n: decode_attention(q, k, v, lengths, num_splits=n), ref, rtol, nbytes, "tb_s")
                if r is not None:
                    b.add(f"decode/bf16/{text}/triton-splitk-s{n}", "tb_s", r, "sdpa-best", best, num_splits=n)
        inputs = q = k = v = lengths = mask = ref = None  # free before the next shape
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------ copy
def bench_copy(b: Bench) -> None:
    n_bytes = 1 << 30
    log("copy d2d 1 GiB")
    try:
        src = torch.randn(n_bytes // 4, device="cuda")
        dst = torch.empty_like(src)
        r = b.measure("copy/d2d/1GiB", lambda: dst.copy_(src), None, math.inf, 2 * n_bytes, "tb_s")
        if r is not None:
            b.add("copy/d2d/1GiB", "tb_s", r, bytes_counted="read + written")
        src = dst = None
        torch.cuda.empty_cache()
    except Exception as exc:  # noqa: BLE001
        b.fail("copy/d2d/1GiB", exc)


# ------------------------------------------------------------------------------------------------ main
def device_info() -> dict:
    try:
        from kernelprof.outputs.benchfile import device_record

        return device_record()
    except Exception as exc:  # noqa: BLE001 - kernelprof.gpu.devices may not exist yet
        props = torch.cuda.get_device_properties(0)
        log(f"(device_record unavailable: {type(exc).__name__}: {exc}; using torch's device properties)")
        return {"name": props.name, "sm_count": props.multi_processor_count,
                "compute_capability": f"{props.major}.{props.minor}",
                "driver": None, "power_limit_w": None}


def print_table(rows: list[tuple]) -> None:
    header = ("case", "metric", "value", "baseline", "baseline value", "ratio")
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(*header)
        for name, metric, value, base, bv, ratio in rows:
            t.add_row(name, metric, f"{value:.1f}" if metric == "tflops" else f"{value:.3f}", base or "",
                      "" if bv is None else (f"{bv:.1f}" if metric == "tflops" else f"{bv:.3f}"),
                      "" if ratio is None else f"{ratio:.3f}")
        Console(width=160).print(t)
    except ImportError:
        pass
    LOG_LINES.append("\t".join(header))
    for row in rows:
        LOG_LINES.append("\t".join("" if x is None else str(x) for x in row))


def _energy_cases(b: Bench) -> dict[str, str]:
    """energy_verdicts' cases, renamed energy/<case>/..., appended to the time cases."""
    from benchmarks.energy_verdicts import CASES, METHOD, run_verdicts

    from dataclasses import replace

    cases, failures, _ = run_verdicts([c[0] for c in CASES], budget_s=float("inf"))
    b.cases += [replace(c, name=f"energy/{c.name}", extra={**(c.extra or {}), "method": METHOD}) for c in cases]
    return {f"energy/{k}": v for k, v in failures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes and shorter timing windows")
    parser.add_argument("--only", choices=["gemm", "attention", "decode", "copy"], action="append",
                        help="run only these parts (repeatable)")
    parser.add_argument("--energy", action="store_true",
                        help="also the energy verdicts at the headline shapes (settled state; ~5-7 min)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/kernels.py needs a CUDA GPU; none is visible", file=sys.stderr)
        return 3
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("unset TRITON_INTERPRET: the benchmark times compiled kernels", file=sys.stderr)
        return 2
    import triton

    t0 = time.time()
    props = torch.cuda.get_device_properties(0)
    log(f"device: {props.name}, {props.multi_processor_count} SMs, capability {props.major}.{props.minor}; "
        f"torch {torch.__version__}, triton {triton.__version__}, python {sys.version.split()[0]}")
    b = Bench(args.quick)
    parts = args.only or ["copy", "gemm", "attention", "decode"]
    for part in ("copy", "gemm", "attention", "decode"):
        if part in parts:
            ts = time.time()
            {"copy": bench_copy, "gemm": bench_gemm, "attention": bench_attention, "decode": bench_decode}[part](b)
            log(f"  ({part}: {time.time() - ts:.0f} s wall including compilation and autotuning)")
    print_table(b.table)
    energy_failures = _energy_cases(b) if args.energy else {}
    notes = {"quick": args.quick, "failures": {**b.failures, **energy_failures}, "wall_s": round(time.time() - t0, 1),
             "timing": "triton.testing.do_bench median (p20/p80 in each case), L2 flushed before each call",
             "counts": "FLOPs = 2 per multiply-add, softmax not counted; causal = exact kept pairs; "
                       "decode/copy bytes = minimum (valid K and V + q + o; copy = read + written)"}
    device = device_info()
    path = write_results("kernels", b.cases, device=device, notes=notes)
    log(f"wrote {path} ({len(b.cases)} cases, {len(b.failures)} failures, {time.time() - t0:.0f} s)")
    out_dir = os.environ.get("OUT")
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_results("kernels", b.cases, device=device, notes=notes, results_dir=out)
        (out / "kernels-bench.log").write_text("\n".join(LOG_LINES) + "\n")
        (out / "kernels-bench-cases.json").write_text(json.dumps([c.to_json() for c in b.cases], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
