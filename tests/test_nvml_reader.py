"""The NVIDIA reader behind the registry, on CPU: a stand-in pynvml (values made up, not measured)
answers the calls NVMLReader, the device facts and `kernelprof info` make, so that the GPU code path
is exercised here in the units NVML uses (mW, mJ, epoch us) and checked after conversion."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from kernelprof.gpu import nvml
from kernelprof.sampling.core import SamplerConfig, SamplerCore
from kernelprof.sampling.readers import NVMLReader, make_reader, vendor_devices, vendor_status

T0_US = 1_764_000_000_000_000


def _fake_pynvml(now_us):
    import pynvml

    def sample(ts, mw):
        return SimpleNamespace(timeStamp=ts, sampleValue=SimpleNamespace(uiVal=mw))

    def get_samples(h, kind, last):
        stamps = [t for t in range(T0_US - 2_000_000, now_us() + 1, 20_000) if t > last][-119:]
        if not stamps:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return 1, [sample(t, 250_000) for t in stamps]

    def field(fid):
        return SimpleNamespace(fieldId=fid, timestamp=now_us(), valueType=1, nvmlReturn=0,
                               value=SimpleNamespace(uiVal=260_000 if fid == 186 else 255_000))

    return SimpleNamespace(
        NVMLError=pynvml.NVMLError, NVML_TOTAL_POWER_SAMPLES=0, NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2,
        NVML_TEMPERATURE_GPU=0,
        nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda i: ("h", i),
        nvmlDeviceGetUUID=lambda h: b"GPU-stand-in", nvmlDeviceGetName=lambda h: "Stand-in H100",
        nvmlSystemGetDriverVersion=lambda: "580.00", nvmlSystemGetCudaDriverVersion_v2=lambda: 13000,
        nvmlDeviceGetSamples=get_samples,
        nvmlDeviceGetFieldValues=lambda h, ids: [field(i) for i in ids],
        nvmlDeviceGetTotalEnergyConsumption=lambda h: 1_000_000 + (now_us() - T0_US) // 4,  # mJ: 250 W
        nvmlDeviceGetClockInfo=lambda h, which: 1980 if which == 1 else 2619,
        nvmlDeviceGetMaxClockInfo=lambda h, which: 1980 if which == 1 else 2619,
        nvmlDeviceGetTemperature=lambda h, kind: 41,
        nvmlDeviceGetCurrentClocksEventReasons=lambda h: 0,
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=97, memory=40),
        nvmlDeviceGetComputeRunningProcesses=lambda h: [SimpleNamespace(pid=4242)],
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 700_000,
        nvmlDeviceGetPowerManagementDefaultLimit=lambda h: 700_000,
        nvmlDeviceGetEccMode=lambda h: (1, 1), nvmlDeviceGetMigMode=lambda h: (0, 0),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(total=80 * 2**30),
        nvmlDeviceGetPciInfo=lambda h: SimpleNamespace(busId=b"00000000:19:00.0"),
    )


class Clock:
    def __init__(self) -> None:
        self.t_us = T0_US

    def __call__(self) -> int:
        return self.t_us


@pytest.fixture
def stand_in(monkeypatch):
    import pynvml

    clock = Clock()
    fake = _fake_pynvml(clock)
    monkeypatch.setattr(nvml, "init", lambda: fake)
    monkeypatch.setattr(nvml, "_pynvml", lambda: pynvml)
    monkeypatch.setattr(NVMLReader, "now_us", lambda self: clock())
    return clock


def test_the_registry_builds_the_nvml_reader_and_the_core_runs_on_it(stand_in):
    assert SamplerConfig.for_channels(NVMLReader.channels) == SamplerConfig()  # NVML's are the defaults
    reader = make_reader({"kind": "nvml"})
    assert isinstance(reader, NVMLReader) and isinstance(make_reader({"vendor": "nvidia"}), NVMLReader)
    core = SamplerCore(reader, [0], SamplerConfig(counter_interval_s=0))
    sources = core.begin()
    assert sources[0].available() == ["samples", "instant", "average", "counter", "clocks", "throttle",
                                      "utilization", "processes"]
    while stand_in.t_us < T0_US + 2_000_000:
        stand_in.t_us += 5_000
        if core.seconds_until_due(stand_in.t_us) == 0:
            core.tick(stand_in.t_us)
    tr = core.finish()
    g = tr.gpus[0]
    assert (g.uuid, g.name, tr.provenance, tr.reader["vendor"]) == ("GPU-stand-in", "Stand-in H100", "measured", "nvidia")
    assert set(g.samples_w) == {250.0} and np.all(np.diff(g.samples_t_us) == 20_000)  # mW -> W
    assert list(g.instant_w) == [260.0] and list(g.average_w) == [255.0]  # equal values merged
    assert g.counter_j[-1] - g.counter_j[0] == pytest.approx(250.0 * 2.0, rel=1e-6)  # mJ -> J
    assert set(g.sm_clock_mhz) == {1980.0} and set(g.util_gpu_pct) == {97.0} and set(g.temperature_c) == {41.0}


def test_device_facts_and_status_come_through_the_registry(stand_in):
    (facts,) = vendor_devices()
    assert facts["nvml_index"] == 0 and facts["uuid"] == "GPU-stand-in" and facts["driver_version"] == "580.00"
    assert facts["power_limit_w"] == 700.0 and facts["default_power_limit_w"] == 700.0
    assert facts["pci_bus_id"] == "00000000:19:00.0" and facts["ecc_enabled"] is True and facts["mig_enabled"] is False
    assert vendor_status("nvml") == {"available": True, "driver_version": "580.00", "message": "ok",
                                     "cuda_driver_version": "13.0"}
    from kernelprof.cli.info import gather_info

    assert gather_info()["nvml"]["cuda_driver_version"] == "13.0"
