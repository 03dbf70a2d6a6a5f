"""Which figure each saved run kind gets (`kernelprof plot`), and where it goes.

- profile run: the power timeline (phases shaded with their joules, power limit, clock panel);
- llm run: prefill/decode bars (<run>.png) and its profile's power timeline (<run>.timeline.png);
- sensor run: its recorded loads' timeline: the square waves and steps, with each segment shaded;
- compare run: energy vs time per call with iso-power lines;
- sweep .jsonl: measured energy beside each estimate; workload .jsonl: J per request per bin.
A figure never replaces its input: an --out naming the input is refused.
"""
from __future__ import annotations

from pathlib import Path

from kernelprof.errors import RunFileError, UsageError


def default_out(path: Path) -> Path:
    return path.with_name(path.name.rsplit(".", 1)[0] + ".png")


def _timeline(profile_path: Path, out: Path, title: str, depth: int, *, kind: str = "profile") -> Path:
    from kernelprof.outputs import plots
    from kernelprof.outputs.perfetto import power_limits_by_uuid
    from kernelprof.outputs.runfile import load_run
    from kernelprof.profiler import ProfileInputs, load_profile_run

    if kind == "profile":
        r = load_profile_run(profile_path)
        trace, timeline, profiles = r.trace, r.timeline, r.sensor_profiles
    else:  # a sensor run stores a trace and a timeline the same way
        from kernelprof.sampling.powertrace import PowerTrace
        from kernelprof.timeline.clock import Timeline

        run = load_run(profile_path, kind=kind)
        trace = PowerTrace.from_run_parts(run.payload["trace"], run.arrays)
        timeline, profiles = Timeline.from_json(run.payload["timeline"]), []
    from kernelprof.attribution.intervals import attribute

    attr = attribute(trace, timeline, profiles=list(profiles) or None)
    env = load_run(profile_path).environment
    g = trace.gpus[0]
    limit = power_limits_by_uuid(env).get(g.uuid or "")
    # The idle line: a measured idle phase of the run (`kernelprof run`'s baseline), never a guess.
    idle = next((iv for iv in attr.intervals if iv.path == "(idle baseline)"), None)
    return plots.power_timeline_png(trace, timeline, out, title=f"{title} on {g.name}", depth=depth,
                                    power_limit_w=limit, idle_w=idle.mean_power_w if idle is not None else None, phase_energy_j=[iv.energy_j for iv in attr.intervals],
                                    lag_s=attr.sensor_profiles[0].samples_lag_s)


def plot_run(path: str | Path, out: str | Path | None = None, *, depth: int = 0) -> list[Path]:
    """Write the figure(s) of a saved run; returns the paths written."""
    from kernelprof.outputs import plots

    from kernelprof.outputs.runfile import arrays_path
    from kernelprof.outputs.safe_paths import refuse_overwriting_inputs

    path = Path(path)
    out = Path(out) if out else default_out(path)
    inputs = [path] if path.suffix == ".jsonl" else [path, arrays_path(path)]
    refuse_overwriting_inputs(out, inputs)  # what was asked for, before the suffix is added
    if out.suffix.lower() != ".png":
        out = out.with_name(out.name + ".png")  # the PNG's real name, which is the one printed
    refuse_overwriting_inputs(out, inputs)
    if path.suffix == ".jsonl":
        from kernelprof.methods.ladder_store import is_ladder_jsonl, saved_ladder
        from kernelprof.outputs.jsonl_store import read_store

        if is_ladder_jsonl(path):
            saved = saved_ladder(path)
            r0 = saved.rungs[0]
            return [plots.ladder_png(saved.rungs, out, title=f"{r0.model} ladder, batch {r0.batch}: {path.name}")]

        recs = list(read_store(path).records.values())
        if recs and "input_bin" in recs[0]:
            from kernelprof.methods.llm.bin_store import read_bin_store

            recs = list(read_bin_store(path).records.values())  # every bin checked, as report does
            return [plots.workload_heatmap_png(recs, out, title=f"J per request by bin: {path.name}")]
        from kernelprof.methods.sweep import read_done

        recs = list(read_done(path).values())
        rows = [plots.EstimateRow(f"{r['variant']} {r['shape']}", r["result"]["measurement"]["energy_per_call_j"],
                                  r["result"]["measurement"].get("energy_ci_j"),
                                  {e["name"]: e["energy_j"] for e in r["result"]["estimates"]})
                for r in recs if r.get("status") == "ok"]
        if not rows:
            raise UsageError(f"{path} has no finished points to plot")
        return [plots.measured_over_estimates_png(rows, out, title=f"measured / estimated energy per call: {path.name}")]
    from kernelprof.outputs.runfile import load_run

    r = load_run(path)
    if r.kind == "profile":
        return [_timeline(path, out, path.name, depth)]
    if r.kind == "sensor":
        return [_timeline(path, out, f"{path.name}: sensor loads", depth, kind="sensor")]
    if r.kind == "llm":
        from kernelprof.methods.llm.result import LLMResult

        res = LLMResult.from_json(r.payload["result"])
        written = [plots.llm_phases_png(res, out, title=f"{res.model} {res.mode} batch {res.batch}, "
                                                         f"{res.input_len} in / {res.output_len} out")]
        prof = path.with_name(r.payload.get("profile", ""))
        if r.payload.get("profile") and prof.is_file():
            written.append(_timeline(prof, out.with_name(out.name[:-4] + ".timeline.png"), prof.name, depth))
        return written
    if r.kind == "compare":
        from kernelprof.methods.compare_variants import point_of

        p = r.payload
        pts = [point_of(n, k) for n, k in p["variants"].items()]
        return [plots.energy_vs_time_png(pts, out, title=f"{p['op']} {p['shape']} {p['dtype']} on {p['gpu_name']}")]
    raise RunFileError(f"{path} is a '{r.kind}' run; plot takes profile, llm, sensor and compare runs, "
                       "or a sweep's or workload's .jsonl")
