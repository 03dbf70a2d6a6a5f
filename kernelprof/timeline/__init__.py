"""Timeline: what ran when, on the clock the power samples use (DESIGN.md, Runner and Timeline).

Takes in: CUDA events recorded around regions, CUPTI kernel activity, host epoch anchors.
Produces: a `Timeline` of named, nested intervals in epoch nanoseconds; CUDA-event timings with
quantiles; a `KernelTrace` of GPU kernel, memcpy and memset slices on the same clock.

- `clock`: `EventClock` (CUDA event times fitted onto `time.time_ns()` by anchors, drift included),
  `Interval` and `Timeline`.
- `cuda_timing`: `time_cuda`, CUDA-event timing of any callable (L2 flushed or rotating inputs,
  CUDA graphs for short kernels), and rotating input sets.
- `kernel_trace`: torch.profiler (CUPTI) activity turned into a `KernelTrace` on the Profiler's clock;
  `kineto_events` reads the activity, `kernel_clock` aligns it through marker brackets, `kernel_recorder`
  drives torch.profiler.
"""
