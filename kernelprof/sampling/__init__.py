"""Sampling: the board's power sensors read in the background while a program runs (DESIGN.md, PowerSampler).

Takes in: GPU indices, a polling schedule (`SamplerConfig`) and a reader (NVML, another registered
vendor, or a recorded trace).
Produces: a `PowerTrace`: numpy arrays per source and GPU (buffered samples, instant and average
power fields, the energy counter at marks, clocks, temperature, throttle reasons, utilization),
on NVML's epoch clock, with the gaps it noticed.

- `readers`: the abstract `Reader` (named power channels in W with their windows, energy counter,
  clocks/utilization, identity; one question per call) and its registry (`register_reader`,
  `make_reader`); `readers.nvidia.NVMLReader`, one file per vendor.
- `replay`: `ReplayReader`, a recorded trace served as NVML would have; `synthetic_trace` for tests.
- `core`: `SamplerCore`, what to read when and gap detection (no threads: replayable); `core_state`: `SamplerConfig` (re-exported by `core`) and the per-GPU accumulation state.
- `runners`: `PowerSampler`, which runs a core in a thread or a child process (and their frame protocol).
- `powertrace`: the `PowerTrace` record and its run-file arrays.
"""
