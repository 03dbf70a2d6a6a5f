"""`kernelprof sweep`: measure a grid of points, streaming each to JSONL as it finishes (resumable)."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernelprof.cli.kernel import add_measure_options, config_from_args
from kernelprof.cli.output import console, fmt, print_json
from kernelprof.errors import RunFileError, UsageError, points_failed_exit
from kernelprof.methods.sweep import BUILTIN_SUITES, builtin_suite, load_sweep_toml, read_done, run_sweep, sweep_config
from kernelprof.outputs.jsonl_store import prepare
from kernelprof.outputs.runfile import to_jsonable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="measure a grid of kernels/shapes; results stream to JSONL and can resume")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--suite", choices=sorted(BUILTIN_SUITES), help="a built-in grid")
    src.add_argument("--grid", help="a TOML grid file (see kernelprof.methods.sweep for the format)")
    p.add_argument("-o", "--out", help="JSONL results (default runs/sweep-<name>.jsonl)")
    p.add_argument("--resume", action="store_true", help="continue a sweep: skip points already done in --out")
    p.add_argument("--new-file", action="store_true", help="move an existing --out aside and start a new file")
    add_measure_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kernelprof.gpu.devices import gpu_facts, require_gpu
    from kernelprof.methods.kernel_energy import measure_op

    spec = builtin_suite(args.suite) if args.suite else load_sweep_toml(args.grid)
    if args.dtype != "bf16":
        raise UsageError("sweeps take their dtypes from the grid; --dtype applies to `kernelprof kernel`")
    cfg = config_from_args(args)
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{spec.name}.jsonl"
    measure_cfg = to_jsonable(cfg)
    prepare(out, sweep_config(spec, measure_cfg), resume=args.resume, new_file=args.new_file, what="sweep")
    require_gpu("kernelprof sweep")
    facts = gpu_facts(args.device)
    config = sweep_config(spec, measure_cfg, gpu={"gpu_uuid": facts.uuid, "driver": facts.driver_version})
    done_before = len([r for r in read_done(out, warn_user=False).values() if r.get("status") == "ok"]) \
        if args.resume else 0

    def measure(point):
        return measure_op(point.op, point.variant, point.shape, point.dtype, device=args.device, config=cfg,
                          seed=args.seed).to_json()

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task(f"sweep {spec.name}", total=len(spec.points), completed=0)

        def on_point(point, rec):
            status = rec.get("status")
            progress.update(task, advance=1, description=f"{point.key} [{'ok' if status == 'ok' else 'FAILED'}]")

        records = run_sweep(spec, measure, out, resume=args.resume, config=config, on_point=on_point)
    failed = [r for r in records if r.get("status") != "ok"]
    console.print(f"{len(records) - len(failed)} points ok ({done_before} from before), {len(failed)} failed; "
                  f"results in {out}")
    render_jsonl(out)
    return points_failed_exit(len(failed), len(records), "points")


def render_jsonl(path: Path, *, as_json: bool = False) -> int:
    """Table of a sweep's JSONL (used by `kernelprof report file.jsonl` too)."""
    records = list(read_done(Path(path)).values())
    if not records:
        raise RunFileError(f"{path} holds no sweep records")
    if as_json:
        print_json(records)
        return 0
    t = Table(title=f"Sweep {records[0].get('sweep', '')}: {path}")
    for col in ("point", "time/call", "TFLOP/s", "TB/s", "mean W", "energy/call", "±", "J/TFLOP", "vs paper", "flags"):
        t.add_column(col, justify="left" if col in ("point", "flags") else "right")
    for r in records:
        if r.get("status") != "ok":
            t.add_row(r["key"], "[red]failed[/]", "", "", "", "", "", "", "", r.get("error", "")[:60])
            continue
        k = r["result"]
        m = k["measurement"]
        paper = next((e for e in k["estimates"] if e["name"] == "paper"), {})
        e = m["energy_per_call_j"]
        t.add_row(r["key"], fmt(m["time_per_call_s"] * 1e6, "us"), fmt(m["achieved_flop_s"] / 1e12),
                  fmt(m["achieved_bytes_s"] / 1e12), fmt(m["mean_power_w"]), fmt(None if e is None else e * 1e3, "mJ"),
                  fmt(100 * m["energy_ci_j"] / e, "%", digits=2) if e and m["energy_ci_j"] is not None else "-",
                  fmt(k["j_per_tflop"]), fmt(paper.get("ratio"), "x"), ",".join(f["code"] for f in m["flags"]))
    console.print(t)
    return 0


