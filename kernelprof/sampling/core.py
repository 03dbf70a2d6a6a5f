"""PowerSampler's scheduling core: reads a GPU's power sources in the background while a program runs.

Three layers, so that the logic runs on CPU against a recorded trace:
- a *reader* (a `kernelprof.sampling.readers.Reader`: `NVMLReader`, `ReplayReader` in tests, or any
  registered vendor) answers one question at a time, in SI units, on the epoch-microsecond clock;
- `SamplerCore` (here) decides what to read when (drain the ~2.4 s sample buffer every 0.25 s, poll the
  ~100 ms power fields every 25 ms keeping only new timestamps, clocks/throttle/utilization at
  10 Hz, the 4 ms energy counter only at start, stop and `mark_counter()`), and detects gaps;
- `PowerSampler` (kernelprof.sampling.runners) runs a core in a thread or in a child process, sleeping between tasks
  (Event.wait / select), never spinning.

A sampler that dies makes `check()` (called by the Profiler at every phase boundary) and `stop()`
raise MeasurementError; it never returns a silently empty trace.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np

from kernelprof.errors import NotSupportedError, NVMLUnavailableError
from kernelprof.sampling.powertrace import Gap, GPUTrace, PowerTrace, Sources
from kernelprof.sampling.readers.common import Reader, check_channels
from kernelprof.sampling.core_state import SamplerConfig, _GPUState, _Latency  # noqa: F401 (SamplerConfig re-exported)


class SamplerCore:
    """The sampler's decisions, driven by `tick()` at whatever moments the runner wakes it."""

    def __init__(self, reader: Reader, gpus: list[int], config: SamplerConfig | None = None,
                 own_pid: int | None = None, mode: str = "thread") -> None:
        self.reader = reader
        self.gpus = list(gpus)
        self.config = config or SamplerConfig.for_channels(reader.channels)
        self.own_pid = os.getpid() if own_pid is None else own_pid
        self.mode = mode
        self.latency = _Latency()
        self._g: list[_GPUState] = []
        self._next: dict[str, int] = {}
        self._polled: list[str] = []  # the reader's polled power channels ("instant", "average" for NVML)
        self.start_us = 0

    # -- timing -----------------------------------------------------------------------------
    def _timed(self, source: str, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.latency.add(source, (time.perf_counter() - t0) * 1e6)

    def _source_failed(self, g: _GPUState, source: str, exc: Exception, now_us: int) -> None:
        """A source that answered at start and now fails: stop using it and say so."""
        g.sources = replace(g.sources, **{source: False})
        g.missing[source] = f"failed mid-run: {exc}"
        g.gaps.append(Gap(source, "source_failed", now_us, now_us, 0.0, str(exc)))

    # -- lifecycle --------------------------------------------------------------------------
    def begin(self) -> list[Sources]:
        check_channels(self.reader)
        self._polled = self.reader.polled_channels()
        idents = self.reader.open(self.gpus)
        self._g = [_GPUState(ident, self.reader.probe(k)) for k, ident in enumerate(idents)]
        if not any(g.sources.samples or g.sources.instant or g.sources.average or g.sources.counter
                   for g in self._g):
            why = "; ".join(f"GPU {g.ident.gpu}: {g.missing}" for g in self._g)
            vendor = "NVML" if self.reader.vendor == "nvidia" else f"{self.reader.vendor} reader"
            raise NotSupportedError(f"no {vendor} power source answered ({why})")
        now = self.reader.now_us()
        self.start_us = now
        for k, g in enumerate(self._g):
            if g.sources.samples:
                self._drain(k, g, now, first=True)
            if g.sources.counter:
                self._counter(k, g, precise=False)
        self._next = {"drain": now + int(self.config.drain_interval_s * 1e6)}  # just drained
        self.tick(now)
        return [g.sources for g in self._g]

    def seconds_until_due(self, now_us: int | None = None) -> float:
        now = self.reader.now_us() if now_us is None else now_us
        due = min(self._next.values()) if self._next else now
        return max(0.0, (due - now) / 1e6)

    def tick(self, now_us: int | None = None, force: bool = False) -> None:
        """Run every task whose time has come (all of them with `force`)."""
        now = self.reader.now_us() if now_us is None else now_us
        c = self.config
        tasks = [("drain", c.drain_interval_s, self._drain_all)]
        if c.read_fields:
            tasks.append(("fields", c.field_interval_s, self._fields_all))
        if c.read_state:
            tasks.append(("state", c.state_interval_s, self._state_all))
            tasks.append(("processes", c.process_interval_s, self._procs_all))
        if c.counter_interval_s > 0:
            tasks.append(("counter", c.counter_interval_s, self._counter_periodic_all))
        for name, interval_s, fn in tasks:
            if force or now >= self._next.get(name, 0):
                due = fn(now)
                if due is not None:  # the task chose its own next time (the counter's update grid)
                    self._next[name] = due
                    continue
                # schedule from the planned time, not from now, so a late wake does not drift the grid;
                # but never schedule in the past (after a long stall, restart the grid at now)
                planned = self._next.get(name, now) + int(interval_s * 1e6)
                self._next[name] = planned if planned > now else now + int(interval_s * 1e6)

    def mark_counter(self, precise: bool = False, requested_ns: int | None = None) -> None:
        """Read the counter on every GPU; a precise request already answered by a pinned reading
        stamped after `requested_ns` (host time.time_ns) is skipped, so back-to-back phase edges
        share one mark instead of queueing 100 ms apart."""
        gs = [(k, g) for k, g in enumerate(self._g) if g.sources.counter]
        if precise and requested_ns is not None and gs and \
                all(g.last_precise_host_ns >= requested_ns for _, g in gs):
            return
        for k, g in gs:
            self._counter(k, g, precise)

    def samples_so_far(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The buffered samples drained so far for the k-th GPU: (t_us, power_w), copies."""
        g = self._g[k]
        ts, ws = list(g.samples_t), list(g.samples_w)
        n = min(len(ts), len(ws))  # the sampler thread may append between the two reads
        if n == 0:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        return np.concatenate(ts[:n]).astype(np.int64), np.concatenate(ws[:n]).astype(np.float64)

    def finish(self, provenance: str = "measured") -> PowerTrace:
        now = self.reader.now_us()
        self.tick(now, force=True)
        self.mark_counter(precise=False)
        stop = self.reader.now_us()
        self._drain_past(stop)
        stop = self.reader.now_us()
        for g in self._g:  # close open stalls
            for source, (t0, _) in g.stalls.items():
                g.gaps.append(Gap(source, "stalled", t0, stop, 0.0, "no update until the sampler stopped"))
            g.stalls.clear()
        lat = self.latency.medians()
        traces = []
        for g in self._g:
            st = g.state
            traces.append(GPUTrace(
                gpu=g.ident.gpu, uuid=g.ident.uuid, name=g.ident.name,
                sources=replace(g.sources, missing=g.missing),
                samples_t_us=np.concatenate(g.samples_t) if g.samples_t else np.empty(0, np.int64),
                samples_w=np.concatenate(g.samples_w) if g.samples_w else np.empty(0, np.float64),
                instant_t_us=np.asarray(g.field_t["instant"], np.int64),
                instant_w=np.asarray(g.field_w["instant"], np.float64),
                average_t_us=np.asarray(g.field_t["average"], np.int64),
                average_w=np.asarray(g.field_w["average"], np.float64),
                counter_t_us=np.asarray([c[0] for c in g.counter], np.int64),
                counter_j=np.asarray([c[1] for c in g.counter], np.float64),
                counter_precise=np.asarray([c[2] for c in g.counter], np.bool_),
                state_t_us=np.asarray([t for t, _ in st], np.int64),
                sm_clock_mhz=np.asarray([s.sm_clock_mhz for _, s in st], np.float64),
                mem_clock_mhz=np.asarray([s.mem_clock_mhz for _, s in st], np.float64),
                temperature_c=np.asarray([s.temperature_c for _, s in st], np.float64),
                clock_event_reasons=np.asarray([s.clock_event_reasons for _, s in st], np.int64),
                util_gpu_pct=np.asarray([s.util_gpu_pct for _, s in st], np.float64),
                util_mem_pct=np.asarray([s.util_mem_pct for _, s in st], np.float64),
                process_t_us=np.asarray([t for t, _ in g.procs], np.int64),
                other_processes=np.asarray([n for _, n in g.procs], np.int64),
                gaps=tuple(sorted(g.gaps, key=lambda x: x.t0_us)),
                drains=g.drains, max_drain_interval_s=g.max_drain_interval_us / 1e6,
                call_latency_us={k.split(":", 1)[1]: v for k, v in lat.items() if k.startswith(f"{g.ident.gpu}:")},
            ))
        return PowerTrace(mode=self.mode, start_t_us=self.start_us, stop_t_us=stop, own_pid=self.own_pid,
                          gpus=tuple(traces), config=self.config.to_json(), provenance=provenance,
                          reader=self.reader.describe())

    def _drain_past(self, t_us: int) -> None:
        """Wait (sleeping) for a sample stamped at or after `t_us`, so the last window is covered.

        Without it, the last ~20 ms before stop (and a counter mark there) would lie past the
        final sample and attribution would clamp them away. Gives up after ~3 sample periods.
        """
        deadline = time.monotonic() + 3 * self.config.nominal_sample_period_s + 0.02
        for k, g in enumerate(self._g):
            before = self.reader.now_us()
            while g.sources.samples and g.last_sample_us < t_us and time.monotonic() < deadline:
                time.sleep(0.005)
                now = self.reader.now_us()
                if now == before:  # a driven clock (tests) does not move while we wait
                    break
                self._drain(k, g, now)

    # -- tasks ------------------------------------------------------------------------------
    def _drain_all(self, now: int) -> None:
        for k, g in enumerate(self._g):
            if g.sources.samples:
                self._drain(k, g, now)

    def _drain(self, k: int, g: _GPUState, now: int, first: bool = False) -> None:
        c = self.config
        try:
            t, w = self._timed(f"{g.ident.gpu}:samples", self.reader.samples, k, g.last_sample_us)
        except (NotSupportedError, NVMLUnavailableError) as exc:
            self._source_failed(g, "samples", exc, now)
            return
        if g.last_drain_us is not None:
            g.max_drain_interval_us = max(g.max_drain_interval_us, now - g.last_drain_us)
        since_drain_us = None if g.last_drain_us is None else now - g.last_drain_us
        g.last_drain_us = now
        g.drains += 1
        keep = t > g.last_sample_us  # NVML returns only newer samples; be safe against repeats
        t, w = t[keep], w[keep]
        period = g.sample_period_us(c.nominal_sample_period_s * 1e6)
        if len(t) == 0:
            self._check_stall(g, "samples", g.last_sample_us, now, period)
            return
        self._end_stall(g, "samples", now)
        if not first:
            full = len(t) >= c.buffer_capacity
            jump = t[0] - g.last_sample_us
            late = full or (since_drain_us is not None and since_drain_us > 0.9 * c.buffer_capacity * period)
            if full or jump > c.gap_factor * period:
                kind = "drain_late" if late else "sensor_gap"
                detail = ("buffer was full at the drain" if full else
                          f"drain {since_drain_us / 1e6:.2f} s after the previous one" if late else
                          "drained in time: the sensor skipped")
                g.gaps.append(Gap("samples", kind, int(g.last_sample_us), int(t[0]),
                                  float(max(jump / period - 1.0, 1.0 if full else 0.0)), detail))
        d = np.diff(t)
        for i in np.nonzero(d > c.gap_factor * period)[0]:  # holes inside one drained batch
            g.gaps.append(Gap("samples", "sensor_gap", int(t[i]), int(t[i + 1]), float(d[i] / period - 1.0),
                              "inside one drained batch: the sensor skipped"))
        if g.last_sample_us:
            g.recent_deltas_us.append(float(t[0] - g.last_sample_us))
        g.recent_deltas_us.extend(d.tolist()[-64:])
        g.samples_t.append(t)
        g.samples_w.append(w)
        g.last_sample_us = int(t[-1])

    def _check_stall(self, g: _GPUState, source: str, last_us: int, now: int, period_us: float) -> None:
        if last_us and source not in g.stalls and now - last_us > max(self.config.stall_s * 1e6, 3 * period_us):
            g.stalls[source] = [int(last_us), now]

    def _end_stall(self, g: _GPUState, source: str, now: int) -> None:
        stall = g.stalls.pop(source, None)
        if stall is not None:
            g.gaps.append(Gap(source, "stalled", stall[0], now, 0.0, "source stopped updating, then resumed"))

    def _fields_all(self, now: int) -> None:
        for k, g in enumerate(self._g):
            if not any(getattr(g.sources, name) for name in self._polled):
                continue
            try:
                readings = self._timed(f"{g.ident.gpu}:fields", self.reader.poll_power_w, k)
            except (NotSupportedError, NVMLUnavailableError) as exc:
                for name in self._polled:
                    if getattr(g.sources, name):
                        self._source_failed(g, name, exc, now)
                continue
            for name in self._polled:
                r = readings.get(name)
                if not getattr(g.sources, name) or r is None:
                    continue
                # On the H100 driver 580 a field's NVML timestamp is the time of the query, not of
                # the sensor's update (it moved every ~2 ms when polled every ~2 ms, 2026-11-26),
                # so an update shows only as a new value: keep a reading when the value changes.
                # Equal consecutive updates (flat idle) are merged, which a step function may do,
                # and fields get no gap or stall detection: they are comparison sources only.
                vals = g.field_w[name]
                if not vals or float(r[1]) != vals[-1]:
                    g.field_t[name].append(int(r[0]))
                    vals.append(float(r[1]))
            g.last_field_poll_us = now

    def _counter(self, k: int, g: _GPUState, precise: bool) -> None:
        """Read the energy counter; with `precise`, read until it steps and stamp the step.

        The counter updates every ~100 ms, so one read is stale by up to a period; reading until
        the value changes (each read ~4 ms) pins the update to within one call.
        """
        # Stamps come from the reader's own clock around each read (the host clock for NVML, the
        # driven clock in replays): mapping host time into a replay's clock moved pins by however
        # long the host was descheduled, which made the pin tests fail under load.
        def read() -> tuple[float, int, int, int]:  # (J, host mid ns, reader start us, reader end us)
            t0, r0 = time.time_ns(), self.reader.now_us()
            e = self._timed(f"{g.ident.gpu}:counter", self.reader.counter_j, k)
            return e, (t0 + time.time_ns()) // 2, r0, self.reader.now_us()

        try:
            e0, a0, ra0, rb0 = read()
            if not precise:
                g.counter.append(((ra0 + rb0) // 2, e0, False))
                return
            deadline = a0 + int(self.config.precise_mark_timeout_s * 1e9)
            prev_mid_ns, prev_mid_us = a0, (ra0 + rb0) // 2
            while True:
                e, a, ra, rb = read()
                mid_us = (ra + rb) // 2
                if e == e0 and rb == rb0:  # a driven clock (tests): no step will come
                    g.counter.append((mid_us, e, False))
                    return
                if e != e0:
                    g.counter.append(((prev_mid_us + mid_us) // 2, e, True))
                    g.last_precise_host_ns = (prev_mid_ns + a) // 2  # host time, for phase-edge checks
                    return
                prev_mid_ns, prev_mid_us = a, mid_us
                if time.time_ns() > deadline:
                    g.counter.append((mid_us, e, False))
                    return
        except (NotSupportedError, NVMLUnavailableError) as exc:
            self._source_failed(g, "counter", exc, self.reader.now_us())

    def _counter_periodic_all(self, now: int) -> int:
        """Pin the counter on every GPU; return when to wake for the next pin: just before the update
        predicted `counter_interval_s` on, so that the read-until-step loop is a few reads, not 100 ms."""
        from kernelprof.attribution.counter_discipline import COUNTER_PERIOD_S, next_update_us

        interval_us = int(self.config.counter_interval_s * 1e6)
        due = []
        for k, g in enumerate(self._g):
            if not g.sources.counter:
                continue
            pins = [t for t, _, precise in g.counter[-8:] if precise]
            step = next_update_us(pins, now)
            call_us = float(np.median(self.latency._us.get(f"{g.ident.gpu}:counter", [3_000.0])))
            # wake this long before the predicted step: a few calls, and a 5 ms GIL switch interval of
            # lateness, so that the first read still sees the old value (else it polls a whole period)
            lead_us = max(12_000.0, 3 * call_us)
            if step is not None and step - now > lead_us + 1_000:
                due.append(int(step - lead_us))  # woke early (or late past a step): wait for this one
                continue
            self._counter(k, g, precise=True)
            pins = [t for t, _, precise in g.counter[-8:] if precise]
            # the update nearest one interval on (within half a counter period of it)
            step = next_update_us(pins, now + interval_us - int(COUNTER_PERIOD_S * 5e5))
            due.append(int(step - lead_us) if step is not None else now + interval_us)
        return max(min(due), now + 1_000) if due else now + interval_us

    def _state_all(self, now: int) -> None:
        for k, g in enumerate(self._g):
            if not (g.sources.clocks or g.sources.throttle or g.sources.utilization):
                continue
            try:
                s = self._timed(f"{g.ident.gpu}:state", self.reader.state, k, g.sources)
            except (NotSupportedError, NVMLUnavailableError) as exc:
                for name in ("clocks", "throttle", "utilization"):
                    if getattr(g.sources, name):
                        self._source_failed(g, name, exc, now)
                continue
            g.state.append((now, s))

    def _procs_all(self, now: int) -> None:
        for k, g in enumerate(self._g):
            if not g.sources.processes:
                continue
            try:
                pids = self._timed(f"{g.ident.gpu}:processes", self.reader.compute_pids, k)
            except (NotSupportedError, NVMLUnavailableError) as exc:
                self._source_failed(g, "processes", exc, now)
                continue
            g.procs.append((now, count_other_processes(pids, self.own_pid)))


def count_other_processes(pids: list[int], own_pid: int) -> int:
    """Compute processes on the GPU other than the profiled one.

    Inside a container NVML reports host PIDs, so our own PID may be absent; then one of the
    listed processes is taken to be ours.
    """
    others = [p for p in pids if p != own_pid]
    if len(others) == len(pids) and pids:
        return len(pids) - 1
    return len(others)
