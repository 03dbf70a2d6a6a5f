"""Facts about the visible GPUs, read through torch (CUDA) and the registered vendor readers
(NVML for NVIDIA; kernelprof.sampling.readers), matched by UUID."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kernelprof.errors import NoGPUError


@dataclass(frozen=True)
class GPUFacts:
    """One GPU as kernelprof sees it. `index` is the CUDA (torch) index, None if CUDA can't see it."""

    name: str
    uuid: str | None
    index: int | None
    nvml_index: int | None
    driver_version: str | None
    compute_capability: str | None
    sm_count: int | None
    l2_bytes: int | None
    memory_total_bytes: int | None
    power_limit_w: float | None
    default_power_limit_w: float | None
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    max_sm_clock_mhz: int | None
    max_mem_clock_mhz: int | None
    temperature_c: int | None
    ecc_enabled: bool | None
    mig_enabled: bool | None
    pci_bus_id: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "GPUFacts":
        fields = cls.__dataclass_fields__
        return cls(**{k: d.get(k) for k in fields})


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def require_gpu(command: str = "this command") -> None:
    """Raise NoGPUError with one clear sentence when no CUDA GPU is visible."""
    if not cuda_available():
        raise NoGPUError(
            f"{command} needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
            "GPU-less commands such as `kernelprof info` and `kernelprof report` still work"
        )


def _torch_devices() -> list[dict[str, Any]]:
    if not cuda_available():
        return []
    import torch

    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        uuid = getattr(p, "uuid", None)
        uuid = None if uuid is None else "GPU-" + str(uuid) if not str(uuid).startswith("GPU-") else str(uuid)
        out.append({
            "index": i,
            "name": p.name,
            "uuid": uuid,
            "compute_capability": f"{p.major}.{p.minor}",
            "sm_count": p.multi_processor_count,
            "l2_bytes": getattr(p, "L2_cache_size", None),
            "memory_total_bytes": p.total_memory,
        })
    return out


def _vendor_devices() -> list[dict[str, Any]]:
    """GPUFacts fields from every registered vendor reader (NVML's through kernelprof.gpu.nvml)."""
    from kernelprof.sampling.readers import vendor_devices

    return vendor_devices()


def discover_gpus() -> list[GPUFacts]:
    """Every GPU that CUDA or a vendor library (NVML) can see; [] on a machine with neither."""
    by_torch = _torch_devices()
    by_nvml = _vendor_devices()
    nvml_by_uuid = {d["uuid"]: d for d in by_nvml if d.get("uuid")}
    merged: list[dict[str, Any]] = []
    used: set[str] = set()
    for t in by_torch:
        n = nvml_by_uuid.get(t["uuid"] or "")
        if n is None and len(by_torch) == len(by_nvml) == 1:
            n = by_nvml[0]  # one GPU each side: the same card even if torch lacks the UUID
        d = dict(n or {})
        d.update({k: v for k, v in t.items() if v is not None or k not in d})
        if n is not None:
            used.add(n["uuid"] or "")
            d["uuid"] = n["uuid"] or t["uuid"]
        merged.append(d)
    for n in by_nvml:
        if (n["uuid"] or "") not in used:
            merged.append(dict(n, index=None))
    fields = GPUFacts.__dataclass_fields__
    return [GPUFacts(**{k: d.get(k) for k in fields}) for d in merged]


def gpu_facts(index: int = 0) -> GPUFacts:
    """Facts of CUDA device `index`; NoGPUError if there is none."""
    require_gpu()
    for g in discover_gpus():
        if g.index == index:
            return g
    raise NoGPUError(f"no CUDA device with index {index}")
