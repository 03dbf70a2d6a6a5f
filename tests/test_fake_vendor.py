"""A vendor added through the reader registry alone, driven end to end on CPU (no GPU, no NVML).

`FakeVendorReader` is a TEST DOUBLE, not a measurement: its "device" is a made-up step of power
(100 W, then 300 W from 1 s on) served with a shape unlike NVML's, to show that nothing past the
reader assumes NVML: a 10 ms sample buffer of 50 entries, one polled 0.5 s average, an energy
counter, raw values in mW and uJ that the reader converts once, and no clocks or process list.
Its traces say provenance="synthetic", which attribution and the report flag.
"""
from __future__ import annotations

import numpy as np
import pytest

from kernelprof.attribution.intervals import SensorProfile, attribute
from kernelprof.cli import output
from kernelprof.cli.main import main
from kernelprof.errors import NotSupportedError, UsageError
from kernelprof.profiler import build_result, load_profile, save_profile
from kernelprof.sampling.core import SamplerConfig, SamplerCore
from kernelprof.sampling.powertrace import Sources
from kernelprof.sampling.readers import (GPUIdentity, PowerChannel, Reader, make_reader, reader_entry,
                                         register_reader, unregister_reader)
from kernelprof.timeline.clock import ClockAnchor, Interval, Timeline, fit_clock

T0_US = 1_764_000_000_000_000
T0_NS = T0_US * 1000
STEP_S, LOW_W, HIGH_W = 1.0, 100.0, 300.0


def made_up_power_w(t_s: float) -> float:
    return LOW_W if t_s < STEP_S else HIGH_W


def made_up_energy_j(t_s: float) -> float:
    """Exact integral of made_up_power_w from 0 to t_s (the double's 'counter')."""
    return LOW_W * min(t_s, STEP_S) + HIGH_W * max(t_s - STEP_S, 0.0)


class FakeVendorReader(Reader):
    """Test double of a vendor library; every value is computed from made_up_power_w."""

    vendor = "fake-vendor"
    provenance = "synthetic"  # never a measurement
    channels = (
        PowerChannel("samples", buffered=True, window_s=0.010, update_period_s=0.010, capacity=50,
                     note="test double"),
        PowerChannel("average", buffered=False, window_s=0.5, update_period_s=0.050, note="test double"),
    )
    SAMPLE_PERIOD_US = 10_000
    BUFFER = 50

    def __init__(self, clock) -> None:
        self.clock = clock  # a driven clock: epoch us

    def open(self, gpus: list[int]) -> list[GPUIdentity]:
        return [GPUIdentity(g, f"FAKE-{g}", "fake vendor test double") for g in gpus]

    def now_us(self) -> int:
        return int(self.clock())

    def probe(self, k: int) -> Sources:
        return Sources(samples=True, average=True, counter=True,
                       missing={"instant": "the test double has none", "clocks": "the test double has none"})

    def _t_s(self, t_us: int) -> float:
        return (t_us - T0_US) / 1e6

    def _raw_samples_mw(self, last_seen_us: int) -> list[tuple[int, int]]:
        """The 'device' buffer: (stamp us, mW) every 10 ms, the newest BUFFER of them."""
        now = self.now_us()
        newest = now - (now - T0_US) % self.SAMPLE_PERIOD_US
        stamps = [newest - i * self.SAMPLE_PERIOD_US for i in range(self.BUFFER)][::-1]
        out = []
        for t in stamps:
            if t <= last_seen_us:
                continue
            a, b = self._t_s(t - self.SAMPLE_PERIOD_US), self._t_s(t)  # window mean, ending at the stamp
            out.append((t, round(1e3 * (made_up_energy_j(b) - made_up_energy_j(a)) / (b - a))))
        return out

    def samples(self, k: int, last_seen_us: int) -> tuple[np.ndarray, np.ndarray]:
        raw = self._raw_samples_mw(last_seen_us)
        t_us = np.array([t for t, _ in raw], np.int64)
        return t_us, np.array([mw for _, mw in raw], np.float64) / 1e3  # mW -> W, here only

    def poll_power_w(self, k: int) -> dict[str, tuple[int, float]]:
        now = self.now_us()
        t = self._t_s(now)
        mean_w = (made_up_energy_j(t) - made_up_energy_j(t - 0.5)) / 0.5
        return {"average": (now, round(mean_w * 1e3) / 1e3)}

    def counter_j(self, k: int) -> float:
        uj = round(1e6 * (5_000.0 + made_up_energy_j(self._t_s(self.now_us()))))
        return uj / 1e6  # uJ -> J, here only


class Clock:
    def __init__(self, t_us: int) -> None:
        self.t_us = t_us

    def __call__(self) -> int:
        return self.t_us


@pytest.fixture
def fake_vendor():
    clock = Clock(T0_US)
    register_reader("fake-vendor", lambda spec: FakeVendorReader(clock), vendor="fake-vendor")
    yield clock
    unregister_reader("fake-vendor")


def _sample(clock: Clock, until_s: float, config: SamplerConfig | None = None):
    """The sampler core on the registered reader, woken every 5 ms of driven time."""
    core = SamplerCore(make_reader({"vendor": "fake-vendor"}), [0], config)
    core.begin()
    until_us = T0_US + int(until_s * 1e6)
    while clock.t_us < until_us:
        clock.t_us = min(clock.t_us + 5_000, until_us)
        if core.seconds_until_due(clock.t_us) == 0:
            core.tick(clock.t_us)
    return core.finish(FakeVendorReader.provenance)


def test_registry_finds_the_reader_by_name_and_by_vendor(fake_vendor):
    assert isinstance(make_reader({"kind": "fake-vendor"}), FakeVendorReader)
    assert reader_entry(vendor="fake-vendor").name == "fake-vendor"
    assert reader_entry(vendor="nvidia").name == "nvml"  # the built-in ones stay
    with pytest.raises(UsageError, match="already registered"):
        register_reader("fake-vendor", lambda spec: FakeVendorReader(fake_vendor))
    with pytest.raises(UsageError, match="unknown reader kind 'no-such'"):
        make_reader({"kind": "no-such"})


def test_a_channel_a_trace_cannot_store_is_refused_at_begin(fake_vendor):
    class Odd(FakeVendorReader):
        channels = (PowerChannel("socket", buffered=False, window_s=None, update_period_s=None),)

    with pytest.raises(UsageError, match="declares power channels \\['socket'\\]"):
        SamplerCore(Odd(fake_vendor), [0]).begin()


def test_the_core_collects_the_fake_vendors_samples(fake_vendor):
    tr = _sample(fake_vendor, 3.0)
    g = tr.gpus[0]
    assert tr.provenance == "synthetic" and g.name == "fake vendor test double"
    assert g.sources.available() == ["samples", "average", "counter"]
    # every 10 ms stamp from the buffer's history (50 before start) to the end, once, converted to W
    assert np.all(np.diff(g.samples_t_us) == 10_000)
    assert g.samples_t_us[0] == T0_US - 49 * 10_000 and g.samples_t_us[-1] == T0_US + 3_000_000
    assert g.lost_samples() == 0 and not g.gaps
    # the schedule followed the declared buffer: 50 x 10 ms, drained every 0.125 s
    assert (tr.config["buffer_capacity"], tr.config["nominal_sample_period_s"], tr.config["drain_interval_s"]) == \
        (50, 0.010, 0.125)
    assert set(np.round(g.samples_w, 6)) == {LOW_W, HIGH_W}
    assert len(g.average_w) > 10 and len(g.instant_w) == 0 and len(g.state_t_us) == 0
    assert g.counter_j[-1] - g.counter_j[0] == pytest.approx(made_up_energy_j(3.0), abs=1e-6)


def test_attribution_and_the_report_give_the_fake_vendors_phase_energy(fake_vendor, tmp_path, capsys, monkeypatch):
    tr = _sample(fake_vendor, 3.0)
    phases = (Interval("low", T0_NS + 200_000_000, T0_NS + 800_000_000),
              Interval("high", T0_NS + 1_500_000_000, T0_NS + 2_500_000_000))
    tl = Timeline(phases, clock_fit=fit_clock([ClockAnchor(0.0, T0_NS)]))
    window = Interval("window", T0_NS, T0_NS + 3_000_000_000, kind="window")
    # the double's own sensor facts: 10 ms windows, no lag
    prof = SensorProfile(samples_period_s=0.010, samples_window_s=0.010, samples_lag_s=0.0, field_period_s=0.050,
                         note="the test double's made-up sensor: 10 ms windows, no lag")
    res = build_result(attribute(tr, tl, window=window, profiles=prof), tr)
    assert res.phase("low").energy_j == pytest.approx(LOW_W * 0.6, rel=1e-6)
    assert res.phase("high").energy_j == pytest.approx(HIGH_W * 1.0, rel=1e-6)
    assert res.total.energy_j == pytest.approx(made_up_energy_j(3.0), rel=1e-6)
    assert res.provenance == "synthetic"

    path = save_profile(tmp_path / "fake.json", tr, tl, window, [prof], res, environment={"host": "test"})
    assert load_profile(path).phase("high").energy_j == pytest.approx(res.phase("high").energy_j, rel=1e-12)
    monkeypatch.setattr(output.console, "width", 160)
    capsys.readouterr()
    assert main(["report", str(path)]) == 0
    text = capsys.readouterr().out
    high = next(line for line in text.splitlines() if line.strip().startswith("high") or "│ high" in line)
    assert "300" in high, text  # 300 J in the phase table
    assert "synthetic" in text.lower(), text  # the report says it is not a measurement


def test_a_reader_without_power_channels_says_which_vendor(fake_vendor):
    class Silent(FakeVendorReader):
        def probe(self, k: int) -> Sources:
            return Sources(missing={"samples": "off"})

    with pytest.raises(NotSupportedError, match="no fake-vendor reader power source answered"):
        SamplerCore(Silent(fake_vendor), [0]).begin()


def test_the_trace_records_its_reader_and_a_replay_keeps_it(fake_vendor, tmp_path):
    from kernelprof.sampling.powertrace import PowerTrace
    from kernelprof.sampling.replay import ReplayReader

    tr = _sample(fake_vendor, 1.0)
    assert tr.reader["vendor"] == "fake-vendor"
    assert [c["name"] for c in tr.reader["channels"]] == ["samples", "average"]
    assert tr.reader["channels"][1]["window_s"] == 0.5
    meta, arrays = tr.to_run_parts()
    back = PowerTrace.from_run_parts(meta, arrays)
    assert back.reader == tr.reader
    clock = Clock(T0_US)
    again = SamplerCore(ReplayReader(back, clock=clock), [0]).begin()
    assert again[0].available() == ["samples", "average", "counter"]
    assert ReplayReader(back).describe()["vendor"] == "fake-vendor"
    meta.pop("reader")  # an older file: no reader recorded
    assert PowerTrace.from_run_parts(meta, arrays).reader == {}


def test_a_spec_can_name_the_module_that_registers_its_reader(tmp_path, monkeypatch):
    """What a sampler child process does for a reader registered outside kernelprof."""
    (tmp_path / "kp_test_double_vendor.py").write_text(
        "from kernelprof.sampling.readers import register_reader\n"
        "import test_fake_vendor as t\n"
        "register_reader('module-vendor', lambda spec: t.FakeVendorReader(t.Clock(t.T0_US)), replace=True)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    try:
        reader = make_reader({"kind": "module-vendor", "module": "kp_test_double_vendor"})
        assert reader.vendor == "fake-vendor"
    finally:
        unregister_reader("module-vendor")


def test_a_drain_later_than_the_fake_buffer_loses_samples_and_says_so(fake_vendor):
    from dataclasses import replace

    cfg = replace(SamplerConfig.for_channels(FakeVendorReader.channels), drain_interval_s=1.0)
    g = _sample(fake_vendor, 3.0, cfg).gpus[0]
    late = [x for x in g.gaps if x.kind == "drain_late"]
    assert late and late[0].detail == "buffer was full at the drain"
    # drains at 1, 2 and 3 s, each 100 samples after the last and keeping 50
    assert g.lost_samples() == pytest.approx(3 * (100 - 50), abs=3)
