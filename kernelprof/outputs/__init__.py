"""Outputs: results written down and shown, on any machine, with or without a GPU (DESIGN.md, Result).

Takes in: a method's result and the environment it ran in.
Produces: versioned run files (JSON plus a checksummed `.arrays.npz`), benchmark results files,
Perfetto/Chrome trace JSON and matplotlib PNGs. The CLI's renderers (kernelprof.cli) print tables.

- `environment`: where a measurement came from (GPUs, driver, library versions, git revision, host).
- `runfile`: `save_run` / `load_run`, versioned, old versions still load; `to_jsonable`.
- `benchfile`: `benchmarks/results/<benchmark>-<gpu>.json` in the shape DESIGN.md gives.
- `perfetto`: phase and kernel slices with power, clock and temperature counter tracks.
- `plots`: energy vs time per variant, measured vs estimated energy.
- `jsonl_store`: the one resumable JSONL store (sweep points, workload bins, ladder rungs).
- `perfetto_rewrite`: shipped traces rewritten with the current placement rules.
- `plot_runs`: `kernelprof plot` of any saved run kind; `tables`: CSV rows of a run.
- `safe_paths`: output paths checked so that no command overwrites its own input.
"""
