"""Sensor profiles measured by `kernelprof sensor` on one card of a model, shipped with kernelprof.

A GPU with no profile of its own (a fresh machine) borrows its model's: the sampling period,
window and lag of NVML's power sources were the same on two H200s and on the H100 within a few
hundred microseconds (SENSOR_FACTS.md), far closer than the H100 default is to an unknown card.
The result says that the profile is another card's, and how to measure this one.
`python -m kernelprof.attribution.shipped_profiles RUN.json` adds a profile from a sensor run file.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).resolve().parent.parent / "data" / "sensor_profiles"


def model_slug(gpu_name: str | None) -> str | None:
    """'NVIDIA H100 80GB HBM3' -> 'h100'; 'NVIDIA H200' -> 'h200'; None when no model number is found."""
    if not gpu_name:
        return None
    m = re.search(r"\b([A-Z]{1,3}\d{2,4}[A-Z]?)\b", gpu_name.upper().replace("NVIDIA", ""))
    return m.group(1).lower() if m else None


def shipped_profile(gpu_name: str | None) -> dict[str, Any] | None:
    """The shipped profile document for this GPU's model ({"profile", "gpu_name", "from"}), if any."""
    slug = model_slug(gpu_name)
    path = PROFILE_DIR / f"{slug}.json" if slug else None
    if path is None or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("profile"), dict) else None


def ship_from_run(run_path: Path) -> Path:
    """Write the profile of a `kernelprof sensor --out` run file as its model's shipped profile."""
    doc = json.loads(Path(run_path).read_text(encoding="utf-8"))
    prof = doc["payload"]["profile"]
    gpus = doc.get("environment", {}).get("gpus") or [{}]
    name = gpus[0].get("name")
    slug = model_slug(name)
    if slug is None:
        raise SystemExit(f"cannot tell the GPU model of {run_path} (name {name!r})")
    out = PROFILE_DIR / f"{slug}.json"
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"profile": prof, "gpu_name": name,
                               "from": f"{Path(run_path).name}: kernelprof sensor on one {name}, "
                                       f"{prof.get('created', '?')}, driver {prof.get('driver', '?')}"}, indent=1) + "\n")
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"wrote {ship_from_run(Path(arg))}")
