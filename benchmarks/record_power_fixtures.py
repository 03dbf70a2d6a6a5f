"""Record real power runs on a GPU with kernelprof's own sampler, as CPU test fixtures.

    PYTHONPATH=. python benchmarks/record_power_fixtures.py --out tests/data/

Writes four profile run files (each with a small .arrays.npz beside it), replayed by
tests/test_power_replay.py through the same attribution code:
  power_idle        ~3 s of nothing
  power_steady      ~4 s of back-to-back bf16 4096^3 matmuls (a 0.5 s "ramp" phase, then "steady")
  power_square_5_95 ~4 s of 5 ms matmul bursts, host sleep 85-105 ms between (jittered, mean 95 ms),
                    each burst a nested "burst" phase
  power_phased      10 phases of ~0.55 s with different loads, counter marks at each phase edge
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernelprof.methods.matmul_load import MatmulLoad  # noqa: E402
from kernelprof.profiler import Profiler  # noqa: E402


class Gemm(MatmulLoad):
    """kernelprof's matmul load, with bursts optionally recorded as "burst" phases of a Profiler."""

    def __init__(self, n: int = 4096) -> None:
        super().__init__(0, n, warmup=30, timing_reps=100)
        self.ms = self.ms_per_matmul

    def square(self, prof: Profiler | None, on_ms: float, off_ms: tuple[float, float], seconds: float,
               rng: np.random.Generator) -> None:
        def burst(run) -> None:
            with prof.phase("burst", kind="burst"):
                run()

        super().square(on_ms, off_ms, seconds, rng=rng, each_burst=burst if prof is not None else None)


def record_idle(out: Path) -> Path:
    with Profiler() as prof:
        with prof.phase("idle"):
            time.sleep(3.0)
    return prof.save(out / "power_idle.json", extra={"recording": "idle 3 s"})


def record_steady(out: Path, gemm: Gemm) -> Path:
    with Profiler(counter_marks=True) as prof:
        with prof.phase("ramp"):
            gemm.busy_for(0.5)
        with prof.phase("steady"):
            gemm.busy_for(3.5)
    return prof.save(out / "power_steady.json",
                     extra={"recording": "bf16 4096^3 matmuls back to back, 0.5 s ramp + 3.5 s steady",
                            "ms_per_matmul": gemm.ms})


def record_square(out: Path, gemm: Gemm, rng: np.random.Generator) -> Path:
    with Profiler() as prof:
        time.sleep(0.3)
        with prof.phase("square"):
            gemm.square(prof, 5.0, (85.0, 105.0), 0.3, rng)
            prof.mark_counter()
            gemm.square(prof, 5.0, (85.0, 105.0), 4.0, rng)
            prof.mark_counter()
        time.sleep(0.3)
    return prof.save(out / "power_square_5_95.json",
                     extra={"recording": "5 ms bf16 matmul bursts, host sleep uniform 85-105 ms, 4.3 s; "
                                         "counter marks 0.3 s in and at the end",
                            "ms_per_matmul": gemm.ms})


def record_phased(out: Path, gemm: Gemm, rng: np.random.Generator) -> Path:
    import torch

    small = Gemm(1024)
    x = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")  # 256 MiB copy: HBM-bound
    y = torch.empty_like(x)

    def copy_for(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(20):
                y.copy_(x)
            torch.cuda.synchronize()

    loads = [
        ("idle", lambda: time.sleep(0.55)),
        ("gemm_4096", lambda: gemm.busy_for(0.55)),
        ("square_10_30", lambda: gemm.square(None, 10.0, (30.0, 30.0), 0.55, rng)),
        ("copy_hbm", lambda: copy_for(0.55)),
        ("gemm_1024", lambda: small.busy_for(0.55)),
        ("square_50_50", lambda: gemm.square(None, 50.0, (50.0, 50.0), 0.55, rng)),
        ("idle_after", lambda: time.sleep(0.55)),
        ("square_5_95", lambda: gemm.square(None, 5.0, (95.0, 95.0), 0.55, rng)),
        ("gemm_4096_again", lambda: gemm.busy_for(0.55)),
        ("copy_hbm_again", lambda: copy_for(0.55)),
    ]
    with Profiler(counter_marks=True) as prof:
        for name, body in loads:
            with prof.phase(name):
                body()
    return prof.save(out / "power_phased.json",
                     extra={"recording": "10 phases of ~0.55 s: " + ", ".join(n for n, _ in loads)})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "data"))
    args = ap.parse_args()
    from kernelprof.gpu.devices import require_gpu

    require_gpu("record_power_fixtures.py")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [record_idle(out)]  # first, before any work heats the clocks up
    gemm = Gemm()
    time.sleep(1.0)
    paths.append(record_steady(out, gemm))
    time.sleep(1.0)
    paths.append(record_square(out, gemm, rng))
    time.sleep(1.0)
    paths.append(record_phased(out, gemm, rng))
    for p in paths:
        side = p.with_name(p.name[:-5] + ".arrays.npz")
        size = p.stat().st_size + (side.stat().st_size if side.exists() else 0)
        print(f"{p}  {size / 1e3:.0f} kB")
        if size > 1_000_000:
            print(f"warning: {p.name} is over 1 MB", file=sys.stderr)
    from kernelprof.profiler import load_profile

    for p in paths:
        r = load_profile(p)
        print(f"{p.name}: {r.total.time_s:.2f} s, {r.total.energy_j:.1f} J by samples, counter "
              f"{r.total.energy_counter_j if r.total.energy_counter_j is None else round(r.total.energy_counter_j, 1)} J "
              f"(diff {r.total.counter_diff_pct}%), lost samples {r.lost_samples:.0f}")
    return 0


if __name__ == "__main__":
    from kernelprof.errors import KernelprofError

    try:
        sys.exit(main())
    except KernelprofError as exc:
        print(f"record_power_fixtures.py: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
