"""Prefill vs decode on Llama-3.1-8B shapes: kernelprof's optimized path against transformers' eager
`generate` on the same card in the same run, in-run vs steady-state phase energy, and the time per
batch against the roofline floor (kernelprof.methods.llm.floor, from the copy bandwidth and matmul rate
measured at the start of the same run).

For batch 1, 8 and 64 with 512 input and 128 output tokens: the optimized path (Triton attention and
decode kernels, CUDA-graph decode) measured by `run_llm` (both methods), and transformers'
LlamaForCausalLM (eager attention, random weights of the same shape) measured in-run. Writes
`benchmarks/results/llm-<gpu>.json`: energy and time per request of each, their ratio (baseline /
ours: above 1 means ours saves), and each phase's in-run vs steady-state gap.

    PYTHONPATH=. python benchmarks/llm.py [--batches 1,8,64]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernelprof.outputs.benchfile import Case, write_results  # noqa: E402
from kernelprof.gpu.devices import require_gpu  # noqa: E402


def phase_cases(tag: str, p, requests: int) -> list:
    """The phase's in-run vs reference gaps as benchmark cases; `extra` keys as in earlier result files."""
    from kernelprof.methods.llm.result import gap_pct

    def get(method: str, key: str):
        e = p.estimate(method)
        return None if e is None else getattr(e, key)

    extra = {"time_s": p.time_s / requests, "flags": list(p.flags), "requests": requests,
             "busy_fraction": p.busy_fraction, "steady_time_per_call_s": get("steady", "time_per_call_s"),
             "sm_clock_inrun_mhz": p.sm_clock_inrun_mhz, "sm_clock_steady_mhz": get("steady", "sm_clock_mhz"),
             "sm_clock_cycle_mhz": get("cycle", "sm_clock_mhz")}
    cyc = {**extra, "cycle_power_w": get("cycle", "power_w"), "cycle_power_fit_w": get("cycle_fit", "power_w"),
           "cycle_power_fit_se_w": get("cycle_fit", "power_se_w"),
           "cycle_time_per_call_s": get("cycle", "time_per_call_s"),
           "mean_power_inrun_w": p.mean_power_inrun_w, "power_fit_w": get("inrun_fit", "power_w")}
    per_call = {**extra, "steady_energy_per_call_j": get("steady", "energy_per_call_j")}
    fit_extra = {**extra, "power_fit_w": get("inrun_fit", "power_w"), "power_fit_se_w": get("inrun_fit", "power_se_w"),
                 "steady_power_w": get("steady", "power_w")}
    wanted = [("inrun_vs_steady_per_call", "inrun", "steady", True, per_call),
              ("inrun_fit_vs_steady_per_call", "inrun_fit", "steady", True, per_call),
              ("inrun_vs_cycled", "inrun", "cycle", False, cyc),
              ("inrun_fit_vs_cycled_fit", "inrun_fit", "cycle_fit", False, cyc),
              ("inrun_vs_steady", "inrun", "steady", False, extra),
              ("inrun_fit_vs_steady", "inrun_fit", "steady", False, fit_extra)]
    out = []
    for name, method, reference, by_call, ex in wanted:
        g = gap_pct(p, method, reference, per_call=by_call)
        if g is not None:
            out.append(Case(f"{tag}/{name}", "pct", g, extra=ex))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--input", type=int, default=512)
    ap.add_argument("--output", type=int, default=128)
    ap.add_argument("--no-hf", action="store_true")
    ap.add_argument("--min-inrun-s", type=float, default=10.0,
                    help="repeat requests in-run for at least this long (more short prefills for the phase fit)")
    ap.add_argument("--profiles", help="folder to save each optimized run's profile in")
    args = ap.parse_args()
    require_gpu("benchmarks/llm.py")
    import torch

    from kernelprof.methods.llm.config import get_config
    from kernelprof.methods.llm.floor import measure_rates, roofline_floor
    from kernelprof.methods.llm.run import gap_pct, run_llm

    cases, log = [], {}
    rates = measure_rates()
    log["floor_rates"] = rates.to_json()
    print(f"floor rates: copy {rates.copy_bytes_per_s / 1e12:.3f} TB/s, bf16 matmul {rates.matmul_flop_s / 1e12:.0f} "
          f"TFLOP/s ({rates.how})", flush=True)
    for b in (int(x) for x in args.batches.split(",")):
        tag = f"{args.model}/b{b}/in{args.input}/out{args.output}"
        profile = str(Path(args.profiles) / f"llm-{args.model}-b{b}.profile.json") if args.profiles else None
        r = run_llm(args.model, b, args.input, args.output, mode="optimized", steady=True,
                    min_inrun_s=args.min_inrun_s, profile_path=profile)
        ours = r.to_json()
        gc.collect()
        torch.cuda.empty_cache()
        log[f"{tag}/optimized"] = ours
        e_ours = r.j_per_request_inrun
        t_ours = sum(p.time_s for p in r.phases) / r.requests
        for p in r.phases:
            cases += phase_cases(f"{tag}/{p.name}", p, r.requests)
        phases_j = sum(p.energy_inrun_j or 0 for p in r.phases)
        cases.append(Case(f"{tag}/phases_vs_window", "pct",
                          100 * (phases_j - r.total_energy_inrun_j) / r.total_energy_inrun_j))
        cases.append(Case(f"{tag}/paper_ratio", "x", r.paper_ratio))
        floor = roofline_floor(get_config(args.model), b, args.input, args.output, rates)
        cases.append(Case(f"{tag}/time_vs_floor", "x", t_ours / floor.total_s,
                          extra={"time_per_batch_s": t_ours, **floor.to_json()}))
        print(f"{tag} floor {floor.total_s:.3f} s (prefill {floor.prefill_s * 1e3:.1f} ms, {floor.prefill_bound}-bound; "
              f"decode {floor.decode_s * 1e3:.1f} ms): {t_ours / floor.total_s:.3f}x the floor", flush=True)

        def gaps(method: str, reference: str, per_call: bool = False) -> list[float]:
            return [round(float(gap_pct(p, method, reference, per_call=per_call) or 0), 2) for p in r.phases]

        def mhz(x) -> int | None:  # numpy scalars print as np.float64(...): plain ints for the log
            return None if x is None else round(float(x))

        def clock(p, method: str) -> int | None:
            e = p.estimate(method)
            return None if e is None else mhz(e.sm_clock_mhz)

        print(f"{tag} optimized: {e_ours:.2f} J/request, {t_ours:.3f} s/batch, gaps "
              f"{gaps('inrun', 'steady')}, fit gaps {gaps('inrun_fit', 'steady')}, per call "
              f"{gaps('inrun', 'steady', True)} / {gaps('inrun_fit', 'steady', True)}, cycled gaps "
              f"{gaps('inrun', 'cycle')} / {gaps('inrun_fit', 'cycle_fit')}, clocks in-run/alone/cycled "
              f"{[(mhz(p.sm_clock_inrun_mhz), clock(p, 'steady'), clock(p, 'cycle')) for p in r.phases]}, busy "
              f"{[round(float(p.busy_fraction or 0), 3) for p in r.phases]}", flush=True)
        if args.no_hf:
            continue
        try:
            from kernelprof.methods.llm.hf_baseline import run_hf

            hf = run_hf(args.model, b, args.input, args.output)
        except Exception as exc:  # noqa: BLE001 - the baseline failing (OOM) must not lose our figures
            log[f"{tag}/transformers"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{tag} transformers FAILED: {exc}", flush=True)
            continue
        finally:
            gc.collect()
            torch.cuda.empty_cache()
        log[f"{tag}/transformers"] = hf.to_json()
        cases.append(Case(f"{tag}/j_per_request", "j", e_ours, baseline="transformers-eager",
                          baseline_value=hf.j_per_request, extra={"transformers": hf.transformers_version}))
        cases.append(Case(f"{tag}/time_per_batch", "s", t_ours, baseline="transformers-eager",
                          baseline_value=hf.request_time_s))
        print(f"{tag} transformers: {hf.j_per_request:.2f} J/request, {hf.request_time_s:.3f} s/batch -> "
              f"energy saving {100 * (1 - e_ours / hf.j_per_request):.1f}%, time saving "
              f"{100 * (1 - t_ours / hf.request_time_s):.1f}%", flush=True)
    path = write_results("llm", cases, notes={
        "ours": "optimized path: Triton flash attention prefill (from a CUDA graph up to 16384 prompt tokens), "
                "Triton split-K decode in a CUDA graph, cuBLAS GEMMs",
        "inrun_fit_vs_steady": "in-run energy by the phase fit (one mean power per phase kind fitted to the samples' "
                               "windows) vs steady-state power x in-run time",
        "inrun_vs_steady": "steady state = each phase looped alone for seconds (measure_kernel; ramp dropped)",
        "inrun_vs_steady_per_call": "in-run energy per call (prefill, or decode step) vs the looped-alone energy "
                                    "per call (its mean power x its time per call)",
        "inrun_vs_cycled": "steady state = the phases cycled as in the run (one prefill, then the decode steps at "
                           "the middle context, back to back; kernelprof.methods.llm.cycle), integrated; x in-run time",
        "inrun_fit_vs_cycled_fit": "the same, both sides by the phase fit",
        "baseline": "transformers LlamaForCausalLM, eager attention, generate with min_new_tokens = max_new_tokens",
        "ratio": "baseline / ours for J and s (above 1: ours uses less)",
        "time_vs_floor": "time per batch / the roofline floor: per phase max(minimum bytes / measured copy "
                         "bandwidth, FLOPs / measured bf16 cuBLAS rate), kernelprof.methods.llm.floor",
        "floor_rates": rates.to_json()})
    print(f"wrote {path}")
    out = os.environ.get("OUT")
    if out:
        Path(out, "llm-log.json").write_text(json.dumps(log, default=str, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
