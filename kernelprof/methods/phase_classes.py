"""Joules per kernel class in each phase of a profile with kernels (an 8B `kernelprof llm --kernel-slices`
run, or any Profiler(kernels=True) recording).

The class powers come from one window regression over the whole recording
(`kernelprof.attribution.kernel_regression`): a phase is often shorter than the ~1 s of 20 ms windows a
regression needs (a prefill is ~0.1 s). Each phase then gets, per class, the class's fitted power x its
busy seconds inside the phase's intervals (overlapping kernels share the time, as in the fit), the idle
power x the phase's idle seconds, and the residual: the phase's measured energy (buffered samples
integrated, as every phase table reports it) minus both. So each table sums to the phase's energy
exactly, and a class the regression cannot identify is shown without joules (its share stays in the
residual), never as if measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kernelprof.attribution.kernel_classes import busy_seconds, merged_spans
from kernelprof.attribution.kernel_regression import KernelAttribution, attribute_kernels
from kernelprof.errors import UsageError


@dataclass(frozen=True)
class PhaseClassEnergy:
    name: str
    busy_s: float                # inside the phase's intervals, share-weighted where classes overlap
    power_w: float | None        # the class's fitted power (None: not identifiable)
    energy_j: float | None       # power_w x busy_s, None when not identifiable


@dataclass(frozen=True)
class PhaseClasses:
    """One phase path (all its instances together) split into kernel classes, idle and residual."""

    path: str
    instances: int
    time_s: float
    energy_j: float              # measured: the phase's attributed energy (buffered samples)
    classes: tuple[PhaseClassEnergy, ...]   # by energy, unidentifiable last
    idle_s: float
    idle_energy_j: float | None  # the fit's idle power x idle_s (None: the fit could not derive idle power)
    residual_j: float            # energy_j - identified classes - idle

    def balance_j(self) -> float:
        """identified classes + idle + residual: equals energy_j to rounding."""
        return sum(c.energy_j or 0.0 for c in self.classes) + (self.idle_energy_j or 0.0) + self.residual_j


def split_phases(fit: KernelAttribution, kernels: Any, device: int, phases: Sequence[tuple[str, list[tuple[int, int]],
                 float]]) -> list[PhaseClasses]:
    """`phases`: (path, [(t0_ns, t1_ns) per instance], measured energy J). Kernels of CUDA `device`."""
    class_of = {k.name: k.class_name for k in fit.kernels}
    power = {c.name: (c.power_w if c.identifiable else None) for c in fit.classes}
    names = sorted(power)
    sel = kernels.device == device
    knames = np.asarray(kernels.names, dtype=object)[kernels.name_index[sel]]
    cls = np.array([class_of.get(n, "") for n in knames], dtype=object)
    s_s, e_s = kernels.start_ns[sel] / 1e9, kernels.end_ns[sel] / 1e9
    spans = [merged_spans(s_s[cls == c], e_s[cls == c]) for c in names]
    out = []
    for path, windows, energy_j in phases:
        a = np.array([w[0] for w in windows], float) / 1e9
        b = np.array([w[1] for w in windows], float) / 1e9
        busy, idle = busy_seconds(a, b, spans)
        per = busy.sum(axis=0)
        rows = [PhaseClassEnergy(c, float(per[i]), power[c], None if power[c] is None else power[c] * float(per[i]))
                for i, c in enumerate(names) if per[i] > 0]
        rows.sort(key=lambda r: (r.energy_j is None, -(r.energy_j or 0.0), -r.busy_s))
        idle_s = float(idle.sum())
        # No standard error: the fit held idle power at a bound (no idle windows), which is not a measurement.
        idle_j = None if fit.idle_power_se_w is None else fit.idle_power_w * idle_s
        known = sum(r.energy_j or 0.0 for r in rows)
        out.append(PhaseClasses(path, len(windows), float((b - a).sum()), energy_j, tuple(rows), idle_s, idle_j,
                                energy_j - known - (idle_j or 0.0)))
    return out


def classes_per_phase(profile_path: str | Path, *, depth: int = 0) -> list[tuple[KernelAttribution, list[PhaseClasses]]]:
    """Per GPU with kernels: the whole-recording fit and the phases at `depth` split into classes."""
    from kernelprof.outputs.perfetto import power_limits_by_uuid
    from kernelprof.outputs.runfile import load_run
    from kernelprof.profiler import load_profile, load_profile_run

    r = load_profile_run(profile_path)
    if r.kernels is None:
        raise UsageError(f"{profile_path} recorded no kernels, so there are no classes to split phases into; "
                         "record with Profiler(kernels=True) or `kernelprof llm --kernel-slices`")
    res = load_profile(profile_path)
    fits = attribute_kernels(r.trace, r.kernels, (r.window.t0_ns, r.window.t1_ns), r.sensor_profiles,
                             power_limits_w=power_limits_by_uuid(load_run(profile_path).environment))
    dev_of_uuid = {u: d for d, u in r.kernels.device_uuids.items()}
    out = []
    for fit in fits:
        g = next(g for g in r.trace.gpus if g.gpu == fit.gpu)
        dev = dev_of_uuid.get(g.uuid, g.gpu)
        by_path: dict[str, tuple[list[tuple[int, int]], float]] = {}
        for iv, ph in zip(r.timeline.intervals, res.phases):
            if iv.depth != depth or iv.kind == "window":
                continue
            wins, e = by_path.get(iv.path, ([], 0.0))
            e_gpu = next((x.energy_j for x in ph.gpus if x.gpu == fit.gpu), None) if ph.gpus else ph.energy_j
            by_path[iv.path] = (wins + [(iv.t0_ns, iv.t1_ns)], e + (e_gpu or 0.0))
        out.append((fit, split_phases(fit, r.kernels, dev, [(p, w, e) for p, (w, e) in by_path.items()])))
    return out
