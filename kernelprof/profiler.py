"""The Python API: a context manager that samples power and times named phases.

    from kernelprof import Profiler
    with Profiler(gpus=[0]) as prof:
        with prof.phase("prefill"):
            model.prefill(...)
        with prof.phase("decode"):
            for _ in range(n):
                with prof.phase("step"):
                    model.decode_step(...)
    print(prof.result().phases)
    prof.save("run.json")            # later, without a GPU: load_profile("run.json")

Phases are timed with CUDA events on the first GPU's current stream and wrapped in NVTX ranges;
energy comes from kernelprof.attribution.intervals over the sampled trace. The energy counter is read
(pinned to its update) at the window's start and stop, and, with `counter_marks=True`, at every
phase edge, which then synchronizes the device so that the host-time mark is the phase edge.
With `kernels=True`, torch.profiler (CUPTI) records every GPU kernel, memcpy and memset of the
block, CUDA-graph replays included, and `prof.kernels` holds them on the phases' clock
(kernelprof.timeline.kernel_trace); CUPTI tracing slows launches a little, so it is off by default.
"""
from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from kernelprof.attribution.intervals import (Attribution, CounterCheck, Flag, GPUIntervalEnergy, IntervalEnergy,
                                    SensorProfile, attribute, load_sensor_profile)
from kernelprof.timeline.clock import Interval, Timeline
from kernelprof.attribution.counter_discipline import DisciplineSummary
from kernelprof.errors import MeasurementError, NoGPUError, UsageError
from kernelprof.timeline.kernel_trace import KernelTrace
from kernelprof.sampling.powertrace import PowerTrace
from kernelprof.sampling.core import SamplerConfig
from kernelprof.sampling.runners import PowerSampler


@dataclass(frozen=True)
class PhaseResult:
    """One phase (or the whole window): time from CUDA events, energy summed over the GPUs."""

    name: str
    path: str
    depth: int
    time_s: float
    energy_j: float | None  # integrated buffered samples (or the fallback `method`)
    mean_power_w: float | None
    method: str
    energy_counter_j: float | None  # counter between the marks nearest the edges, where allowed
    counter_window_s: float | None  # the window the counter joules cover
    counter_diff_pct: float | None  # raw samples over that same window vs counter, % of counter
    counter_note: str | None  # why there is no counter figure
    energy_instant_j: float | None  # instant field integrated (comparison only)
    mean_average_field_w: float | None  # mean of the 1 s average field (comparison only)
    flags: tuple[Flag, ...]
    gpus: tuple[GPUIntervalEnergy, ...]
    # The counter discipline (kernelprof.attribution.counter_discipline): energy_j above is disciplined where
    # every GPU was; energy_samples_j is the raw samples' figure either way.
    energy_samples_j: float | None = None
    discipline_correction_pct: float | None = None  # energy_j vs energy_samples_j, % of the samples
    discipline_coverage: float | None = None  # fraction of the phase inside counter spans (min over GPUs)
    energy_uncertainty_j: float | None = None  # 1 sigma of the disciplined energy; None if not derived
    discipline_note: str | None = None

    @classmethod
    def from_interval(cls, iv: IntervalEnergy) -> "PhaseResult":
        """One attributed interval's figures, summed over its GPUs."""
        checks = [g.counter for g in iv.gpus]
        have = all(c is not None for c in checks) and checks
        counter_j = sum(c.counter_energy_j for c in checks) if have else None
        samples_j = [c.samples_energy_j for c in checks] if have else []
        diff = (100.0 * (sum(samples_j) - counter_j) / counter_j
                if have and None not in samples_j and counter_j else None)
        window = max(c.window_s for c in checks) if have else None
        note = None if have else "; ".join(sorted({g.counter_note for g in iv.gpus if g.counter_note}))
        inst = [g.energy_instant_j for g in iv.gpus]
        avg = [g.mean_average_field_w for g in iv.gpus]
        discs = [g.discipline for g in iv.gpus]
        raw_j = iv.samples_energy_j
        disciplined = bool(discs) and None not in discs
        corr = (100.0 * (iv.energy_j - raw_j) / raw_j if disciplined and iv.energy_j is not None and raw_j
                else None)
        uncs = [d.uncertainty_j for d in discs] if disciplined else [None]
        d_note = ("; ".join(sorted({d.uncertainty_note for d in discs})) if disciplined else
                  "; ".join(sorted({g.discipline_note for g in iv.gpus if g.discipline_note})) or None)
        return cls(iv.name, iv.path, iv.depth, iv.time_s, iv.energy_j, iv.mean_power_w, iv.method, counter_j,
                   window, diff, note or None, None if None in inst else float(sum(inst)),
                   None if None in avg else float(sum(avg)), iv.flags, iv.gpus, raw_j, corr,
                   min(d.coverage for d in discs) if disciplined else None,
                   None if None in uncs else float(sum(u * u for u in uncs) ** 0.5), d_note)


@dataclass(frozen=True)
class ProfileResult:
    phases: tuple[PhaseResult, ...]
    total: PhaseResult  # the whole profiled window
    counter_check: tuple[CounterCheck | None, ...]  # whole window, per GPU
    sampler_mode: str
    sources: tuple[dict[str, Any], ...]  # per GPU: gpu, uuid, name, available, missing
    lost_samples: float
    sensor_profiles: tuple[SensorProfile, ...]
    provenance: str
    notes: tuple[str, ...]
    disciplines: tuple[DisciplineSummary | None, ...] = ()  # per GPU; None: raw samples (see notes)

    def phase(self, path: str) -> PhaseResult:
        """The phase at `path` ("decode/step"; the first one where a path repeats); KeyError lists the paths."""
        for p in self.phases:
            if p.path == path:
                return p
        raise KeyError(f"no phase {path!r}; phases are {[p.path for p in self.phases]}")


def build_result(attr: Attribution, trace: PowerTrace) -> ProfileResult:
    sources = tuple({"gpu": g.gpu, "uuid": g.uuid, "name": g.name, "available": g.sources.available(),
                     "missing": dict(g.sources.missing)} for g in trace.gpus)
    return ProfileResult(
        phases=tuple(PhaseResult.from_interval(iv) for iv in attr.intervals),
        total=PhaseResult.from_interval(attr.window),
        counter_check=tuple(g.counter for g in attr.window.gpus),
        sampler_mode=trace.mode, sources=sources,
        lost_samples=float(sum(g.lost_samples() for g in trace.gpus)),
        sensor_profiles=attr.sensor_profiles, provenance=attr.provenance, notes=attr.notes,
        disciplines=attr.disciplines)


class Profiler:
    """Sample power on `gpus` (CUDA indices) and time named phases; see the module docstring."""

    def __init__(self, gpus: Sequence[int] = (0,), *, mode: str = "thread", counter_marks: bool = False,
                 anchor_every_s: float = 10.0, nvtx: bool = True, sampler_config: SamplerConfig | None = None,
                 sensor_profiles: Sequence[SensorProfile] | None = None, reader: Any = None,
                 kernels: bool = False) -> None:
        if not gpus:
            raise UsageError("Profiler needs at least one GPU index")
        self.gpus = list(gpus)
        self.mode = mode
        self.counter_marks = counter_marks
        self.anchor_every_s = anchor_every_s
        self.nvtx = nvtx
        self.sampler_config = sampler_config
        self._profiles_arg = sensor_profiles
        # None: NVML. A Reader object, or a registry spec for make_reader ({"kind": "replay", "path": ...},
        # {"vendor": ...}); the GPUs are still found through CUDA and their nvml_index (GPUFacts)
        self._reader = reader
        self.record_kernels = kernels
        self._kernel_recorder: Any = None
        self.kernels: KernelTrace | None = None  # after the block, with kernels=True
        self.kernels_error: str | None = None  # why kernels is None although they were asked for
        self._device_uuids: dict[int, str] = {}
        self._stack: list[str] = []
        self._result: ProfileResult | None = None
        self._sampler: PowerSampler | None = None
        self.trace: PowerTrace | None = None
        self.timeline: Timeline | None = None
        self.window: Interval | None = None
        self.sensor_profiles: list[SensorProfile] = []
        self.driver: str | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "Profiler":
        from kernelprof.timeline.clock import EventClock
        from kernelprof.gpu.devices import discover_gpus, require_gpu

        require_gpu("the Profiler")
        import torch

        self.torch = torch
        facts = {g.index: g for g in discover_gpus() if g.index is not None}
        missing = [i for i in self.gpus if i not in facts or facts[i].nvml_index is None]
        if missing:
            raise NoGPUError(f"CUDA devices {missing} are not visible to both CUDA and NVML "
                             f"(visible: {sorted(facts)})")
        nvml_indices = [facts[i].nvml_index for i in self.gpus]
        self.driver = facts[self.gpus[0]].driver_version
        self.sensor_profiles = list(self._profiles_arg) if self._profiles_arg else \
            [load_sensor_profile(facts[i].uuid, facts[i].driver_version, facts[i].name) for i in self.gpus]
        self._device_uuids = {i: facts[i].uuid for i in self.gpus if facts[i].uuid}
        if self.record_kernels:
            from kernelprof.timeline.kernel_trace import KernelRecorder

            # Before the sampler: CUPTI's set-up takes seconds, which must not lengthen the power trace.
            self._kernel_recorder = KernelRecorder(self.gpus[0]).start()
        try:
            self._sampler = PowerSampler(nvml_indices, mode=self.mode, config=self.sampler_config,
                                         reader=self._reader).start()
            self._clock = EventClock(self.gpus[0])
            self._clock.anchor()
            if self._kernel_recorder is not None:
                self._kernel_recorder.mark(self._clock)  # start clock marker, just outside the window
            self._window_ev = self._clock.event()
            self._sampler.mark_counter(precise=True)
        except BaseException:
            if self._kernel_recorder is not None:
                self._kernel_recorder.abort()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._sampler is None:
            return
        if exc_type is not None:
            self._sampler.abort()
            if self._kernel_recorder is not None:
                self._kernel_recorder.abort()
            return
        end_ev = self._clock.event()
        if self._kernel_recorder is not None:
            self._kernel_recorder.mark(self._clock)  # end clock marker, just outside the window
        self._clock.add("window", "window", 0, "window", self._window_ev, end_ev)
        self._clock.anchor()
        self._sampler.mark_counter(precise=True)
        self.trace = self._sampler.stop()
        timeline = self._clock.fit()
        self.window = next(i for i in timeline.intervals if i.kind == "window")
        markers = [i for i in timeline.intervals if i.kind == "clock_marker"]
        self.timeline = Timeline(tuple(i for i in timeline.intervals if i.kind not in ("window", "clock_marker")),
                                 timeline.clock, timeline.clock_fit, timeline.anchors)
        attr = attribute(self.trace, self.timeline, window=self.window, profiles=self.sensor_profiles,
                         driver=self.driver)
        self._result = build_result(attr, self.trace)
        if self._kernel_recorder is not None:
            recorder, self._kernel_recorder = self._kernel_recorder, None
            try:
                self.kernels = recorder.finish(markers, self._device_uuids)
            except Exception as err:  # the power measurement stands without its kernel slices
                self.kernels_error = f"kernel slices were not recorded: {err!r}"
                warnings.warn(self.kernels_error, RuntimeWarning, stacklevel=2)

    @contextmanager
    def phase(self, name: str, kind: str = "phase") -> Iterator[None]:
        """A named, nestable phase: CUDA events at its edges, an NVTX range around it."""
        if self._sampler is None or self._result is not None:
            raise UsageError("prof.phase() is only valid inside `with Profiler(...) as prof:`")
        if "/" in name:
            raise UsageError(f"phase names may not contain '/': {name!r}")
        self._sampler.check()  # a dead sampler surfaces here, at the phase boundary
        path = "/".join([*self._stack, name])
        depth = len(self._stack)
        self._edge()
        start = self._clock.event()
        if self.nvtx:
            self.torch.cuda.nvtx.range_push(name)
        self._stack.append(name)
        try:
            yield
        finally:
            self._stack.pop()
            end = self._clock.event()
            if self.nvtx:
                self.torch.cuda.nvtx.range_pop()
            self._clock.add(name, path, depth, kind, start, end)
        self._edge()
        if not self._stack and self._clock.last_anchor_ns is not None \
                and time.time_ns() - self._clock.last_anchor_ns > self.anchor_every_s * 1e9:
            self._clock.anchor()  # drift anchor, only between top-level phases (it synchronizes)
        self._sampler.check()

    def begin_phase(self, name: str, kind: str = "phase") -> tuple[Any, ...]:
        """Start a phase imperatively (NVTX push/pop capture, kernelprof.methods.program_nvtx); returns the
        token that end_phase takes. Phases must end innermost first. No NVTX range of its own."""
        if self._sampler is None or self._result is not None:
            raise UsageError("begin_phase() is only valid inside `with Profiler(...) as prof:`")
        name = name.replace("/", "|")  # '/' separates a path's levels
        token = (name, "/".join([*self._stack, name]), len(self._stack), kind, self._clock.event())
        self._stack.append(name)
        return token

    def end_phase(self, token: tuple[Any, ...]) -> None:
        """End the phase that begin_phase returned `token` for (the innermost open one)."""
        name, path, depth, kind, start = token
        self._stack.pop()
        self._clock.add(name, path, depth, kind, start, self._clock.event())

    def _edge(self) -> None:
        if self.counter_marks:
            self.torch.cuda.synchronize(self.gpus[0])  # the host mark must be the GPU's phase edge
            self._sampler.mark_counter(precise=True)

    def mark_counter(self) -> None:
        """Request an energy-counter reading now (asynchronous)."""
        if self._sampler is None:
            raise UsageError("mark_counter() is only valid inside the Profiler's `with` block")
        self._sampler.mark_counter(precise=True)

    # -- results ----------------------------------------------------------------------------
    def result(self) -> ProfileResult:
        """The attributed result: per-phase time, joules, watts, counter check and flags (cached after the first call)."""
        if self._result is None:
            raise UsageError("prof.result() is available after the `with Profiler(...)` block ends")
        return self._result

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write a run file (kind "profile") with the trace arrays beside it; `extra` goes in the payload."""
        if self._result is None or self.trace is None:
            raise UsageError("prof.save() is available after the `with Profiler(...)` block ends")
        extra = {"driver": self.driver, "counter_marks": self.counter_marks, **(extra or {})}
        if self.kernels_error:
            extra["kernels_error"] = self.kernels_error
        return save_profile(path, self.trace, self.timeline, self.window, self.sensor_profiles, self._result,
                            extra=extra, kernels=self.kernels)


def save_profile(path: str | Path, trace: PowerTrace, timeline: Timeline, window: Interval,
                 profiles: Sequence[SensorProfile], result: ProfileResult | None = None,
                 extra: dict[str, Any] | None = None, environment: dict[str, Any] | None = None,
                 kernels: KernelTrace | None = None) -> Path:
    """Write a profile run file; the kernel record, if any, goes under "kernels" (names, alignment)
    and its arrays into the same .arrays.npz as the power trace."""
    from kernelprof.outputs.runfile import save_run

    meta, arrays = trace.to_run_parts()
    payload = {"trace": meta, "timeline": timeline.to_json(), "window": window.to_json(),
               "sensor_profiles": [p.to_json() for p in profiles], "result": result, **(extra or {})}
    if kernels is not None:
        kmeta, karrays = kernels.to_run_parts()
        payload["kernels"] = kmeta
        arrays.update(karrays)
    return save_run(path, "profile", payload, arrays=arrays, environment=environment)


@dataclass(frozen=True)
class ProfileInputs:
    """Everything a saved profile run holds, rebuilt without a GPU."""

    trace: PowerTrace
    timeline: Timeline
    window: Interval
    sensor_profiles: list[SensorProfile]
    payload: dict[str, Any]
    kernels: KernelTrace | None  # None for runs recorded without kernels=True (and all older files)


def load_profile_run(path: str | Path) -> ProfileInputs:
    """A saved profile run's trace, timeline, window, sensor profiles, payload and kernel record."""
    from kernelprof.errors import RunFileError
    from kernelprof.outputs.runfile import load_run

    run = load_run(path, kind="profile")
    p = run.payload
    try:
        trace = PowerTrace.from_run_parts(p["trace"], run.arrays)
        timeline = Timeline.from_json(p["timeline"])
        window = Interval.from_json(p["window"])
        profiles = [SensorProfile.from_json(x) for x in p.get("sensor_profiles", [])]
    except (KeyError, TypeError) as exc:
        raise RunFileError(f"{path} is a profile run without a readable trace/timeline ({exc!r})") from exc
    try:
        kernels = KernelTrace.from_run_parts(p["kernels"], run.arrays) if p.get("kernels") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFileError(f"{path} has an unreadable kernel record ({exc!r})") from exc
    return ProfileInputs(trace, timeline, window, profiles, p, kernels)


def load_profile_inputs(path: str | Path) -> tuple[PowerTrace, Timeline, Interval, list[SensorProfile], dict]:
    """(trace, timeline, window, sensor profiles, payload) of a saved profile run; see load_profile_run."""
    r = load_profile_run(path)
    return r.trace, r.timeline, r.window, r.sensor_profiles, r.payload


def load_profile(path: str | Path, *, sensor_profiles: Sequence[SensorProfile] | None = None) -> ProfileResult:
    """Rebuild a saved profile's result without a GPU, re-running attribution on its trace with
    the sensor profiles the run was attributed with. A run saved without them is attributed with
    its GPU model's shipped profile (or the default), never with whatever this machine's cache
    holds for that UUID, and says so: the cache may postdate the run."""
    from dataclasses import replace as _replace

    from kernelprof.attribution.intervals import load_sensor_profile

    trace, timeline, window, profiles, payload = load_profile_inputs(path)
    note = None
    if sensor_profiles:
        profs = list(sensor_profiles)
    elif profiles:
        profs = profiles
    else:
        profs = [_replace(load_sensor_profile(None, None, g.name), gpu_uuid=g.uuid) for g in trace.gpus]
        note = (f"{path} carries no sensor profile; attributed with {profs[0].source if profs else 'the default'} "
                "profile for its GPU model, not this machine's cached one")
    attr = attribute(trace, timeline, window=window, profiles=profs, driver=payload.get("driver"))
    res = build_result(attr, trace)
    return _replace(res, notes=tuple(res.notes) + (note,)) if note else res


__all__ = ["Profiler", "ProfileResult", "PhaseResult", "ProfileInputs", "load_profile", "load_profile_run",
           "save_profile", "MeasurementError"]
