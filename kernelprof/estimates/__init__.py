"""Estimates: what a workload should cost, to set beside what it measured (DESIGN.md, Estimates).

Takes in: a workload's FLOPs and minimum bytes (kernels/*/counts.py), the device's name, measured
time, and for counters one kernel call under Nsight Compute.
Produces: datasheet peaks, the paper's TDP / peak x FLOPs estimate, roofline time and energy,
utilization and calibrated-model estimates, NVML utilization beside FLOP utilization, and hardware
counters beside the exact counts with verdicts.

- `datasheets`: dense FLOP/s per dtype, memory bandwidth and TDP by device name (`datasheet_for`).
- `energy`: `Estimate`s (paper, roofline, utilization, calibrated), `EnergyModel` and its fit.
- `utilization`: NVML's "GPU utilization" beside the achieved fraction of peak FLOP/s and bandwidth.
- `counters`: ncu counters against the analytic counts (see that package).
- `energy_fit`: the calibrated, activity and counters models fitted on a card's microbenchmarks,
  validated leave-one-out.
- `linear_fit`: the weighted non-negative least squares (with standard errors) behind every fitted model.
"""
