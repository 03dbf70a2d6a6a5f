"""Methods: the measurements kernelprof makes, each a workload driven through sampling, timeline and
attribution to a typed result (DESIGN.md, "Measuring a kernel..." and "Attributing a generate loop...").

Takes in: a workload (a callable with its inputs, an op from the kernels registry, a sweep grid, a
Llama-shaped generate loop, a request trace) and a GPU.
Produces: results with their method, uncertainty and flags, which the outputs save and render.

- `steady_state`: joules per call of a kernel shorter than the sensor (`measure_kernel`, after Yang et al.);
  `kernel_measurement` holds its config and results, `steady_state_analysis` the arithmetic on a run.
- `kernel_energy`: one op/variant/shape/dtype measured with every estimate beside it (`measure_op`,
  `save_kernel_run`).
- `ops`: op, variant, shape and dtype names resolved against the kernels registry.
- `sweep`: grids of points measured one by one, streamed to resumable JSONL.
- `compare`: verdicts between variants (saves energy, or only time); `compare_variants` measures the
  variants (or reads them from a sweep), compares them and saves the run (`kernelprof compare`).
- `sensor`: characterization of each NVML power source (update period, window, lag, agreement);
  `sensor_response` measures one source's answer to a load, `sensor_report` turns a recording into a report.
- `nvml_crosscheck`: NVML's energy sources against each other, from a sensor run.
- `counters_run`: Nsight Compute counters, NVML utilization or the energy sources as one run of kind
  "counters" (`kernelprof counters`, `kernelprof utilization`).
- `calibrate`: the E = e_flop x FLOPs + e_byte x bytes + P_static x time model fitted on this card.
- `ceilings`: copy bandwidth and matmul throughput measured on this card, cached.
- `workloads`: request traces (Azure, fitted BurstGPT) binned as in Fernandez et al. 2025;
  `workload_run` measures the bins and saves the run, its per-bin JSONL and trace (`kernelprof workload`).
- `llm`: a Llama-shaped model's prefill and decode, measured in-run and as steady-state references.
- `settled`: the settled power state of a kernel looped back to back (the transient cut by MSER).
- `matmul_load`: the one bf16 matmul load the sensor, power benchmark and fixtures drive.
- `calibration_suite`: the calibration's microbenchmarks measured, fitted and validated;
  `calibration_counters` profiles each of them once under ncu for the counters model.
- `program`, `program_nvtx`, `program_summary`: `kernelprof run`, a whole program under the Profiler,
  NVTX ranges as phases, and the summary (per range, per kernel class) of its run file;
  `phase_classes` splits each phase of a profile with kernels into kernel classes, idle and residual.
- `ladder`, `ladder_run`, `ladder_store`, `ladder_workload`: the optimization ladder's arithmetic, its
  GPU measurement, its resumable JSONL, and its first and last rung over a binned workload.
- `user_case`: a user's own kernel from the CLI (`kernelprof kernel --fn pkg.module:make_case`).
"""
