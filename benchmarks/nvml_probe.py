"""Print what this driver's NVML actually returns for the calls kernelprof's sampler uses.

A diagnostic, not a benchmark: run it on a new GPU/driver before trusting the sampler there.
    PYTHONPATH=. python benchmarks/nvml_probe.py
"""
from __future__ import annotations

import time

import pynvml


def main() -> None:
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    print("name", pynvml.nvmlDeviceGetName(h), "driver", pynvml.nvmlSystemGetDriverVersion())
    print("nvml module version", getattr(pynvml, "__version__", "?"))
    t0 = time.time()
    vtype, samples = pynvml.nvmlDeviceGetSamples(h, pynvml.NVML_TOTAL_POWER_SAMPLES, 0)
    dt = time.time() - t0
    print(f"getSamples: type={vtype} n={len(samples)} call={dt * 1e6:.0f}us now_us={int(time.time() * 1e6)}")
    if samples:
        ts = [s.timeStamp for s in samples]
        print("  first", ts[0], samples[0].sampleValue.uiVal, "last", ts[-1], samples[-1].sampleValue.uiVal)
        d = [b - a for a, b in zip(ts, ts[1:])]
        print("  deltas_us head", d[:10])
    for fid in (185, 186):
        t0 = time.time()
        fv = pynvml.nvmlDeviceGetFieldValues(h, [fid])[0]
        dt = time.time() - t0
        print(f"field {fid}: ret={fv.nvmlReturn} ts={fv.timestamp} vtype={fv.valueType} "
              f"ui={fv.value.uiVal} ull={fv.value.ullVal} call={dt * 1e6:.0f}us")
    t0 = time.time()
    e = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
    print(f"energy counter mJ={e} call={(time.time() - t0) * 1e6:.0f}us")
    for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
        fn = getattr(pynvml, name, None)
        print(name, "missing" if fn is None else hex(fn(h)))
    print("util", pynvml.nvmlDeviceGetUtilizationRates(h).gpu, "procs",
          len(pynvml.nvmlDeviceGetComputeRunningProcesses(h)))
    # Field timestamps over 0.5 s of polling: how often do 185/186 update?
    seen = {185: [], 186: []}
    end = time.time() + 0.5
    while time.time() < end:
        for fv, fid in zip(pynvml.nvmlDeviceGetFieldValues(h, [185, 186]), (185, 186)):
            if not seen[fid] or seen[fid][-1] != fv.timestamp:
                seen[fid].append(fv.timestamp)
        time.sleep(0.002)
    for fid, ts in seen.items():
        print(f"field {fid} distinct timestamps in 0.5 s: {len(ts)} deltas_us {[b - a for a, b in zip(ts, ts[1:])]}")


if __name__ == "__main__":
    main()
