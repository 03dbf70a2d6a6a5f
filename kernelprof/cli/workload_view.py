"""Tables of a workload run (`kernelprof workload`, and `kernelprof report` of its run file or
per-bin JSONL): the per-bin energies and the totals against the paper's estimate."""
from __future__ import annotations

from pathlib import Path

from rich.table import Table

from kernelprof.cli.output import console, fmt, print_json


def render_run(run) -> None:
    recs = None
    bins_file = run.payload.get("bins_file")
    if run.path is not None and bins_file and (run.path.parent / bins_file).exists():
        from kernelprof.methods.llm.binned import read_bins

        recs = list(read_bins(run.path.parent / bins_file).values())
    gpus = (run.environment or {}).get("gpus") or []
    render_summary(run.payload["summary"], recs, gpu_name=gpus[0].get("name") if gpus else None)


def is_workload_jsonl(path: Path) -> bool:
    """A workload's per-bin JSONL (records with input_bin/output_bin), not a sweep's."""
    from kernelprof.outputs.jsonl_store import read_store

    first = next(iter(read_store(path).records.values()), None)
    return first is not None and "input_bin" in first


def render_workload_jsonl(path: Path, *, as_json: bool = False) -> int:
    """`kernelprof report bins.jsonl`: the per-bin table and the totals it implies."""
    from kernelprof.methods.llm.binned import bin_totals, read_bins

    recs = list(read_bins(path).values())
    if not recs:
        from kernelprof.errors import RunFileError

        raise RunFileError(f"{path} holds no workload bins")
    if as_json:
        print_json(recs)
        return 0
    render_bins(recs)
    tot = bin_totals(recs)
    if tot.prefill_energy_j is not None and tot.decode_energy_j is not None:
        e = tot.prefill_energy_j + tot.decode_energy_j
        console.print(f"{len(recs)} bins: {fmt(e, 'J')} for {tot.requests} requests, prefill "
                      f"{100 * tot.prefill_energy_j / e:.1f}%; the summary run beside it has the paper's ratio")
    return 0


def _paper_per_batch_j(rec: dict, gpu_name: str | None) -> float | None:
    """TDP / headline peak x the record's FLOPs (the paper's convention) from the datasheet of the GPU
    it ran on; else the record's own figure if it says it used that convention. Records written
    before the convention was recorded used the dense peak: recomputed, not mixed in."""
    from kernelprof.estimates.energy import paper_estimate_j
    from kernelprof.estimates.datasheets import datasheet_for

    sheet = datasheet_for(gpu_name) if gpu_name else None
    if sheet is not None and rec.get("flops_per_batch"):
        return paper_estimate_j(rec["flops_per_batch"], "bf16", sheet)
    if rec.get("paper_peak_convention") == "headline":
        return rec.get("paper_estimate_per_batch_j")
    return None


def render_bins(recs: list[dict], gpu_name: str | None = None) -> None:
    t = Table(title="per bin (one measured batch each)")
    for col in ("input", "output", "requests", "batch", "J / batch", "J / request", "prefill share", "s / batch",
                "measured / paper", "status"):
        t.add_column(col, justify="right")
    for r in sorted(recs, key=lambda r: (r["input_bin"], r["output_bin"])):
        if r.get("status") != "ok":
            t.add_row(str(r["input_bin"]), str(r["output_bin"]), str(r["requests"]), str(r.get("batch", "-")),
                      "-", "-", "-", "-", "-", f"[red]{r.get('error', r.get('status'))}[/]")
            continue
        ph = r.get("phases") or {}
        e_p = (ph.get("prefill") or {}).get("energy_j")
        share = e_p / r["energy_per_batch_j"] if e_p is not None and r["energy_per_batch_j"] else None
        paper = _paper_per_batch_j(r, gpu_name)
        t.add_row(str(r["input_bin"]), str(r["output_bin"]), str(r["requests"]), str(r["batch"]),
                  fmt(r["energy_per_batch_j"], "J"), fmt(r["energy_per_batch_j"] / r["batch"], "J"),
                  fmt(None if share is None else 100 * share, "%"), fmt(r["time_per_batch_s"], "s"),
                  fmt(r["energy_per_batch_j"] / paper if paper else None, "x"), "ok")
    console.print(t)


def render_summary(s: dict, recs: list[dict] | None = None, gpu_name: str | None = None) -> None:
    if recs:
        render_bins(recs, gpu_name)
    console.print(f"[bold]{s['workload']}[/] on {s['model']} ({s['mode']}): {s['requests']} requests, {s['dropped']} "
                  f"dropped, {s['bins_measured']} bins measured, {len(s['bins_failed'])} failed")
    console.print(f"measured {fmt(s['energy_j'], 'J')} vs paper estimate "
                  f"(TDP / {s.get('paper_peak_convention', 'dense')} peak x FLOPs) "
                  f"{fmt(s['paper_estimate_j'], 'J')}: "
                  f"{fmt(s['ratio'], 'x')} (paper: unoptimized PyTorch 2.0-6.1x, vLLM 1.27-1.64x, on A6000)")
    prefill, decode = s.get("prefill_energy_j"), s.get("decode_energy_j")
    gpu_time = s.get("gpu_time_s")
    if prefill is None and recs:  # runs saved before the summary carried the split
        from kernelprof.methods.llm.binned import bin_totals

        tot = bin_totals(recs)
        prefill, decode, gpu_time = tot.prefill_energy_j, tot.decode_energy_j, tot.gpu_time_s
    if prefill is not None and decode is not None and prefill + decode > 0:
        console.print(f"prefill {fmt(prefill, 'J')} ({100 * prefill / (prefill + decode):.1f}%), decode "
                      f"{fmt(decode, 'J')} ({100 * decode / (prefill + decode):.1f}%); the batches take "
                      f"{fmt(gpu_time, 's')} of GPU time")
    if s.get("wall_s") is not None:
        console.print(f"this run took {fmt(s['wall_s'], 's')} of wall time")
    for n in s["notes"]:
        console.print(f"[dim]note: {n}[/]")
