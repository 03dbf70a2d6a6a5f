"""Re-save a real profile run with its top-level phases only, as a small CPU test fixture.

A `kernelprof llm` profile holds every decode step's interval (~1,500 in ten seconds) and the
computed result; the fixtures keep the trace arrays, the top-level phases and the window, and say
where the recording came from. The result is recomputed from them when the fixture is loaded.

    python benchmarks/slim_profile.py IN.profile.json tests/data/NAME.json --note "benchmarks/llm.py at ..."
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst", help="a .json path; the arrays go beside it as .arrays.npz")
    ap.add_argument("--note", required=True, help="how, where and when it was recorded")
    args = ap.parse_args()
    src, dst = Path(args.src), Path(args.dst)
    d = json.loads(src.read_text())
    p = d["payload"]
    ivs = p["timeline"]["intervals"]
    top = [iv for iv in ivs if iv["depth"] == 0]
    p["timeline"]["intervals"] = top
    p["result"] = None
    p.pop("kernels", None)
    p["recording"] = f"{args.note}. Re-saved with the top-level phases only ({len(ivs) - len(top)} nested " \
                     "intervals and the computed result dropped)"
    arrays = src.with_name(src.name.replace(".json", ".arrays.npz"))
    dst_arrays = dst.with_name(dst.name.replace(".json", ".arrays.npz"))
    if isinstance(d.get("arrays"), dict):
        d["arrays"]["file"] = dst_arrays.name  # the sha256 stays: the arrays are copied byte for byte
    dst.write_text(json.dumps(d))
    shutil.copyfile(arrays, dst_arrays)
    print(f"wrote {dst} ({dst.stat().st_size} bytes) and {dst_arrays}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
