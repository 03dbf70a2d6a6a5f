"""Attribution: joules of named intervals, from a PowerTrace and a Timeline (DESIGN.md, Attribution).

Takes in: a `PowerTrace` (sampling), a `Timeline` (timeline) and the sensor's lag (the cached
sensor profile).
Produces: energy per interval with its cross-check against the energy counter, flags for what could
make a figure wrong, and per-phase mean powers fitted for phases shorter than a sample.

- `intervals`: `attribute`, which integrates each GPU's power over intervals and checks it against
  the energy counter; it re-exports the names below that callers import from it.
- `power_function`: the piecewise-constant power function of the readings and its exact integral
  over intervals (so phases add up to their union).
- `interval_energy`: the results (`IntervalEnergy`, `GPUIntervalEnergy`, `CounterCheck`, `Flag`).
- `sensor_profile`: `SensorProfile` (the sensor's period, window and lag) and where it is cached.
- `phase_fit`: one mean power per phase kind fitted by least squares to the samples' windows.
- `shipped_profiles`: the sensor profiles measured per GPU model that ship with kernelprof.
- `counter_discipline`: phase energies pinned to the energy counter's updates (the counter as truth).
- `kernel_regression` and `kernel_classes`: joules per kernel class inside a program, by a
  non-negative regression of window energy on per-class busy time (`kernelprof run`).
"""
