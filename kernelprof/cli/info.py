"""`kernelprof info`: the environment, the GPUs with their facts and datasheet peaks."""
from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from kernelprof.cli.output import console, fmt, fmt_si, print_json
from kernelprof.gpu.devices import discover_gpus
from kernelprof.sampling.readers import vendor_status
from kernelprof.outputs.environment import git_revision, library_versions
from kernelprof.estimates.datasheets import datasheet_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show GPUs, datasheet peaks, driver and library versions (no GPU needed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=run)


def gather_info() -> dict[str, Any]:
    """Everything `info` shows, as one JSON-able document."""
    nvml_status = vendor_status("nvml")
    gpus = []
    for g in discover_gpus():
        sheet = datasheet_for(g.name)
        gpus.append({"facts": g.to_json(),
                     "datasheet": sheet.to_json() if sheet else None,
                     "datasheet_note": None if sheet else f"no datasheet entry for '{g.name}'"})
    return {"nvml": nvml_status, "versions": library_versions(), "git_revision": git_revision(), "gpus": gpus}


def run(args: argparse.Namespace) -> int:
    doc = gather_info()
    if args.json:
        print_json(doc)
        return 0

    env = Table(title="Environment", show_header=False)
    env.add_column(style="bold")
    env.add_column()
    for key, value in doc["versions"].items():
        env.add_row(key, str(value) if value is not None else ("none (CPU build of torch)" if key == "cuda_runtime" else "none" if key == "cudnn" else "not installed"))
    env.add_row("git revision", doc["git_revision"])
    n = doc["nvml"]
    env.add_row("NVML", "available, driver " + n.get("driver_version", "?") if n["available"] else n["message"])
    if n.get("cuda_driver_version"):
        env.add_row("CUDA (driver)", n["cuda_driver_version"])
    console.print(env)

    if not doc["gpus"]:
        console.print("No GPU visible: GPU commands (ceilings, sensor, kernel, ...) will refuse to run; "
                      "reports of saved runs still work.")
        return 0
    for entry in doc["gpus"]:
        g = entry["facts"]
        t = Table(title=f"GPU {g['index'] if g['index'] is not None else '(NVML only)'}: {g['name']}",
                  show_header=False)
        t.add_column(style="bold")
        t.add_column()
        t.add_row("UUID", str(g["uuid"]))
        t.add_row("driver", str(g["driver_version"]))
        t.add_row("compute capability", str(g["compute_capability"]))
        t.add_row("SMs", str(g["sm_count"]))
        t.add_row("L2", fmt(g["l2_bytes"] / 2**20, "MiB") if g["l2_bytes"] else "-")
        t.add_row("memory", fmt(g["memory_total_bytes"] / 2**30, "GiB") if g["memory_total_bytes"] else "-")
        t.add_row("power limit", f"{fmt(g['power_limit_w'], 'W')} (default {fmt(g['default_power_limit_w'], 'W')})")
        t.add_row("clocks now / max", f"SM {g['sm_clock_mhz']} / {g['max_sm_clock_mhz']} MHz, "
                                      f"memory {g['mem_clock_mhz']} / {g['max_mem_clock_mhz']} MHz")
        t.add_row("temperature", fmt(g["temperature_c"], "C"))
        t.add_row("ECC / MIG", f"{g['ecc_enabled']} / {g['mig_enabled']}")
        sheet = entry["datasheet"]
        if sheet is None:
            t.add_row("datasheet", entry["datasheet_note"])
        else:
            t.add_row("datasheet model", sheet["model"])
            for key, label in (("fp64_tensor_flop_s", "FP64 tensor"), ("fp32_flop_s", "FP32"),
                               ("tf32_flop_s", "TF32 tensor"), ("bf16_flop_s", "BF16/FP16 tensor"),
                               ("fp8_flop_s", "FP8 tensor")):
                t.add_row(f"peak {label} (dense)", fmt_si(sheet[key], "FLOP/s") if sheet[key] else "not on datasheet")
            t.add_row("peak memory bandwidth", fmt_si(sheet["memory_bandwidth_bytes_s"], "B/s") + f" ({sheet['memory_kind']})")
            t.add_row("TDP", fmt(sheet["tdp_w"], "W"))
            t.add_row("source", sheet["source"])
        console.print(t)
    return 0
