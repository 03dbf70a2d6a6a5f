"""The process `kernelprof counters` runs under Nsight Compute: one call inside an NVTX range.

    python -m kernelprof.estimates.counters.target --op decode --variant triton-splitk \
        --shape b=16,h=32,kv=8,ctx=8192,d=128 --dtype bf16 --info-out /tmp/target.json

It makes the inputs, warms the variant up outside the range (Triton compiles and autotunes on its
first calls; cuBLAS picks its algorithm; SDPA builds its mask cache), then pushes the NVTX range
`kernelprof_target` around exactly one call, so that ncu (`--nvtx-include kernelprof_target/`)
profiles that call's kernels and nothing else. It prints nothing on stdout (ncu's CSV goes there)
and writes what the parent needs to --info-out: the device, the tile the autotuner chose, or the
error that stopped it.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from kernelprof.errors import KernelprofError
from kernelprof.estimates.counters.ncu import NVTX_RANGE

WARMUP_CALLS = 3


def tile_config(op: str, variant: str, inputs: tuple) -> dict[str, Any]:
    """Tile sizes of the Triton variants after warm-up ({} for library kernels): the op's own
    reading of its autotuner or dispatcher (kernels/<op>/tiles.py)."""
    from kernels.registry import get_op

    return get_op(op).tiles.tile_config(variant, inputs)


def run_target(op: str, variant: str, shape: str, dtype: str, seed: int = 0) -> dict[str, Any]:
    """Warm up, then one call inside the NVTX range; returns what the parent records."""
    import torch

    from kernelprof.methods.ops import resolve_kernel
    from kernelprof.gpu.devices import require_gpu

    require_gpu("kernelprof counters")
    req = resolve_kernel(op, variant, shape, dtype)
    fn = req.op.variants[req.variant]
    device = torch.device("cuda", torch.cuda.current_device())
    inputs = req.op.make_inputs(req.shape, req.torch_dtype, device, seed)
    for _ in range(WARMUP_CALLS):
        fn(*inputs)
    torch.cuda.synchronize()
    tile = tile_config(op, req.variant, inputs)
    torch.cuda.nvtx.range_push(NVTX_RANGE)
    fn(*inputs)
    torch.cuda.nvtx.range_pop()
    torch.cuda.synchronize()
    props = torch.cuda.get_device_properties(device)
    return {"device_name": props.name, "compute_capability": f"{props.major}.{props.minor}",
            "tile_config": tile, "torch": torch.__version__, "warmup_calls": WARMUP_CALLS}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kernelprof.estimates.counters.target")
    p.add_argument("--op", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--shape", required=True)
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--info-out", required=True, type=Path)
    args = p.parse_args(argv)
    info: dict[str, Any] = {"ok": False}
    code = 0
    try:
        info.update(run_target(args.op, args.variant, args.shape, args.dtype, args.seed), ok=True)
    except KernelprofError as exc:
        info.update(error=str(exc), error_type=type(exc).__name__)
        code = exc.exit_code
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it as one line
        info.update(error=f"{type(exc).__name__}: {exc}", error_type="KernelprofError",
                    traceback=traceback.format_exc(limit=8))
        code = 1
    args.info_out.write_text(json.dumps(info, indent=1, default=str))
    return code


if __name__ == "__main__":  # pragma: no cover - run by ncu on the GPU machine
    sys.exit(main())
