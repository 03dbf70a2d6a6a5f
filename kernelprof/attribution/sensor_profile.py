"""What attribution assumes about a GPU's power sources: sample period, window and lag, and the
field and counter periods. `kernelprof sensor` measures them (kernelprof.methods.sensor) and caches
a profile per GPU and driver; else the one shipped for the card's model, else a built-in default.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from kernelprof import cache


@dataclass(frozen=True)
class SensorProfile:
    """What attribution assumes about a GPU's power sources (see `kernelprof sensor`)."""

    samples_period_s: float = 0.020
    samples_window_s: float = 0.020
    # 3.6 ms: what `kernelprof sensor` measured on an H100 SXM (traces/sensor-h100.json); with no
    # lag, a phase of ~20 ms reads part of its neighbour's power (the phase fit moved 1-2%).
    samples_lag_s: float = 0.0036
    field_period_s: float = 0.100
    counter_period_s: float = 0.100
    source: str = "default"  # "measured" (by kernelprof sensor on this GPU), "shipped" (another card of its model) or "default"
    note: str = ("built-in default (kernelprof sensor on one H100 80GB HBM3, driver 580.159.04), not measured on "
                 "this GPU; run `kernelprof sensor` (about 20 s) to measure it")
    gpu_uuid: str | None = None
    driver: str | None = None
    created: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SensorProfile":
        """From to_json's dict; unknown keys (a newer file) are ignored."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


DEFAULT_SENSOR_PROFILE = SensorProfile()


def sensor_profile_path(uuid: str | None, driver: str | None):
    return cache.cache_path("sensor", uuid, driver)


def load_sensor_profile(uuid: str | None, driver: str | None, gpu_name: str | None = None) -> SensorProfile:
    """The profile `kernelprof sensor` saved for this GPU and driver; else the one shipped for its
    model (kernelprof.attribution.shipped_profiles); else the default. Each says which it is."""
    doc = None
    if uuid and driver:
        doc = cache.read_cached(sensor_profile_path(uuid, driver))
    elif uuid:  # driver unknown (a saved run without it): the newest profile of this GPU
        stem = sensor_profile_path(uuid, "x").name[:-len("-x.json")]
        found = sorted(cache.cache_dir().glob(stem + "-*.json"), key=lambda p: p.stat().st_mtime)
        doc = cache.read_cached(found[-1]) if found else None
    if doc and isinstance(doc.get("profile"), dict):
        try:
            return SensorProfile.from_json(doc["profile"])
        except TypeError:
            pass
    from kernelprof.attribution.shipped_profiles import shipped_profile

    shipped = shipped_profile(gpu_name)
    if shipped is not None:
        try:
            prof = SensorProfile.from_json(shipped["profile"])
        except TypeError:
            prof = None
        if prof is not None:
            return replace(prof, source="shipped", gpu_uuid=uuid, driver=driver,
                           note=f"another card's profile ({shipped.get('from', 'shipped with kernelprof')}), not "
                                "measured on this GPU; run `kernelprof sensor` (about 20 s) to measure it")
    return SensorProfile(gpu_uuid=uuid, driver=driver)
