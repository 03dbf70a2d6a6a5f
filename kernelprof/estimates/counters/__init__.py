"""Hardware counters beside the analytic counts: one kernel call under Nsight Compute (`kernelprof counters`).

Takes in: an op, variant, shape and dtype (the kernels registry), and ncu on a GPU machine.
Produces: a `CountersResult`: counters summed over the call's kernels, the op's exact counts plus
what its tiles are known to compute, and one verdict per quantity with its tolerance and reason.

- `ncu`: ncu as a subprocess (find it, run a target under it, parse its raw CSV page).
- `target`: the process ncu profiles (`python -m kernelprof.estimates.counters.target`): one call in an NVTX range.
- `metrics`: the metric names asked for, and the verdicts' tolerances with their reasons.
- `totals`: per-kernel counters summed over the call (`CounterTotals`).
- `tile_models`: the exact counts plus what the tiles compute and move beyond them (`AnalyticCounts`),
  from each op's own tile model (kernels/<op>/tiles.py, through the registry).
- `verdicts`: each counter against its analytic value (`Comparison`).
- `run`: `measure_counters` and `build_result`, tying the above together.
"""
