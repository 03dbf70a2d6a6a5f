"""Methods: the measurements kernelprof makes, each a workload driven through sampling, timeline and
attribution to a typed result (DESIGN.md, "Measuring a kernel..." and "Attributing a generate loop...").

Takes in: a workload (a callable with its inputs, an op from the kernels registry, a sweep grid, a
Llama-shaped generate loop, a request trace) and a GPU.
Produces: results with their method, uncertainty and flags, which the outputs save and render.

- `steady_state`: joules per call of a kernel shorter than the sensor (`measure_kernel`, after Yang et al.);
  `kernel_measurement` holds its config and results, `steady_state_analysis` the arithmetic on a run.
- `kernel_energy`: one op/variant/shape/dtype measured with every estimate beside it (`measure_op`).
- `ops`: op, variant, shape and dtype names resolved against the kernels registry.
- `sweep`: grids of points measured one by one, streamed to resumable JSONL.
- `compare`: verdicts between variants (saves energy, or only time).
- `sensor`: characterization of each NVML power source (update period, window, lag, agreement);
  `sensor_response` measures one source's answer to a load, `sensor_report` turns a recording into a report.
- `nvml_crosscheck`: NVML's energy sources against each other, from a sensor run.
- `calibrate`: the E = e_flop x FLOPs + e_byte x bytes + P_static x time model fitted on this card.
- `ceilings`: copy bandwidth and matmul throughput measured on this card, cached.
- `workloads`: request traces (Azure, fitted BurstGPT) binned as in Fernandez et al. 2025.
- `llm`: a Llama-shaped model's prefill and decode, measured in-run and as steady-state references.
"""
