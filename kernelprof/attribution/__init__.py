"""Attribution: joules of named intervals, from a PowerTrace and a Timeline (DESIGN.md, Attribution).

Takes in: a `PowerTrace` (sampling), a `Timeline` (timeline) and the sensor's lag (the cached
sensor profile).
Produces: energy per interval with its cross-check against the energy counter, flags for what could
make a figure wrong, and per-phase mean powers fitted for phases shorter than a sample.

- `intervals`: the piecewise-constant power function of the buffered samples, its exact integral
  over intervals (so phases add up to their union), the counter check, `attribute`, `SensorProfile`.
- `phase_fit`: one mean power per phase kind fitted by least squares to the samples' windows.
"""
