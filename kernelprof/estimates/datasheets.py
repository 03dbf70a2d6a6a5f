"""Datasheet peaks of the GPUs people profile on: dense FLOP/s per dtype, memory bandwidth, TDP.

All FLOP/s fields are dense (NVIDIA's datasheets print tensor-core figures "with sparsity", twice the
dense rate; we halve those). The printed "with sparsity" figures are kept too, as `headline_flop_s`:
Fernandez et al. (2025) took the A6000's headline 309.7 TFLOP/s (dense: 154.8) for their estimate,
so `peak_for(dtype, "headline")` reproduces their convention and `peak_for(dtype, "dense")` the
rate a dense kernel can reach. A GPU that is not in the table gets `None` from `datasheet_for`, and
callers say "no datasheet entry" instead of guessing. Measured ceilings (kernelprof.methods.ceilings) are
what the card really does; these are what the vendor promises.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

TERA = 1e12


@dataclass(frozen=True)
class Datasheet:
    """Vendor peaks for one GPU model. FLOP/s dense; None where the datasheet gives no figure."""

    model: str
    fp64_flop_s: float | None
    fp64_tensor_flop_s: float | None
    fp32_flop_s: float | None
    tf32_flop_s: float | None
    bf16_flop_s: float | None  # tensor cores, fp32 accumulate; fp16 is the same rate on all listed GPUs
    fp8_flop_s: float | None
    memory_bandwidth_bytes_s: float
    memory_kind: str
    tdp_w: float
    source: str
    notes: str = ""
    name_patterns: tuple[str, ...] = field(default=(), repr=False)
    # The datasheet's printed tensor figures "with sparsity" by dtype key, where it prints one
    # (a tuple of pairs, so the dataclass stays hashable).
    headline_flop_s: tuple[tuple[str, float], ...] = ()

    def peak_flop_s(self, dtype: str) -> float | None:
        """Dense peak for a dtype name: fp64, fp32, tf32, bf16, fp16, fp8 (e4m3/e5m2)."""
        key = normalize_dtype(dtype)
        return {
            "fp64": self.fp64_tensor_flop_s or self.fp64_flop_s,
            "fp32": self.fp32_flop_s,
            "tf32": self.tf32_flop_s,
            "bf16": self.bf16_flop_s,
            "fp16": self.bf16_flop_s,
            "fp8": self.fp8_flop_s,
        }[key]

    def peak_for(self, dtype: str, convention: str = "dense") -> float | None:
        """Peak FLOP/s under a convention: "dense", or "headline" (the datasheet's largest printed
        figure: "with sparsity" for tensor dtypes where printed, else the dense one)."""
        if convention == "dense":
            return self.peak_flop_s(dtype)
        if convention != "headline":
            raise ValueError(f"unknown peak convention {convention!r}; expected one of {PEAK_CONVENTIONS}")
        key = normalize_dtype(dtype)
        printed = dict(self.headline_flop_s)
        return printed.get("bf16" if key == "fp16" else key) or self.peak_flop_s(key)

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in (
            "model", "fp64_flop_s", "fp64_tensor_flop_s", "fp32_flop_s", "tf32_flop_s", "bf16_flop_s",
            "fp8_flop_s", "memory_bandwidth_bytes_s", "memory_kind", "tdp_w", "source", "notes")}
        d["headline_flop_s"] = dict(self.headline_flop_s)
        return d


# "headline": the datasheet's printed peak (with sparsity), as the seed paper used; "dense".
PEAK_CONVENTIONS = ("headline", "dense")


def normalize_dtype(dtype: object) -> str:
    """'torch.bfloat16' / 'bfloat16' / 'bf16' -> 'bf16'; raises ValueError for unknown names."""
    text = str(dtype).lower().replace("torch.", "")
    aliases = {
        "float64": "fp64", "double": "fp64", "fp64": "fp64",
        "float32": "fp32", "float": "fp32", "fp32": "fp32", "tf32": "tf32",
        "bfloat16": "bf16", "bf16": "bf16",
        "float16": "fp16", "half": "fp16", "fp16": "fp16",
        "float8_e4m3fn": "fp8", "float8_e5m2": "fp8", "fp8": "fp8", "e4m3": "fp8", "fp8_e4m3": "fp8",
    }
    if text not in aliases:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of fp64, fp32, tf32, bf16, fp16, fp8")
    return aliases[text]


_H100_SRC = "NVIDIA H100 Tensor Core GPU datasheet (2023); tensor figures halved from 'with sparsity'"
_H200_SRC = "NVIDIA H200 Tensor Core GPU datasheet (2024); tensor figures halved from 'with sparsity'"
_A100_SRC = "NVIDIA A100 Tensor Core GPU datasheet (2021); dense tensor figures as printed"
_L40S_SRC = "NVIDIA L40S datasheet (2023); tensor figures halved from 'with sparsity'"
_ADA_SRC = "NVIDIA RTX 6000 Ada Generation datasheet and Ada architecture whitepaper (2023), FP32-accumulate rates"
_A6000_SRC = "NVIDIA RTX A6000 datasheet and GA102 whitepaper (2021), FP32-accumulate rates"

# Headline tensor figures as the datasheets print them, "with sparsity" (H100/H200: "1,979 teraFLOPS*"
# for BF16/FP16, "3,958" FP8, "989" TF32; A100: "312 | 624*"; RTX A6000: "Tensor Performance 309.7").
_H100_SXM_HEAD = (("tf32", 989 * TERA), ("bf16", 1979 * TERA), ("fp8", 3958 * TERA))
_HOPPER_NVL_HEAD = (("tf32", 835 * TERA), ("bf16", 1671 * TERA), ("fp8", 3341 * TERA))
_H100_PCIE_HEAD = (("tf32", 756 * TERA), ("bf16", 1513 * TERA), ("fp8", 3026 * TERA))
_A100_HEAD = (("tf32", 312 * TERA), ("bf16", 624 * TERA))
_L40S_HEAD = (("tf32", 366 * TERA), ("bf16", 733 * TERA), ("fp8", 1466 * TERA))
_ADA_HEAD = (("tf32", 364.2 * TERA), ("bf16", 728.5 * TERA), ("fp8", 1457 * TERA))
_A6000_HEAD = (("tf32", 154.8 * TERA), ("bf16", 309.7 * TERA))

DATASHEETS: tuple[Datasheet, ...] = (
    Datasheet("H100 SXM5 80GB", 34 * TERA, 67 * TERA, 67 * TERA, 494.7 * TERA, 989.4 * TERA, 1978.9 * TERA,
              3.35e12, "HBM3", 700, _H100_SRC, headline_flop_s=_H100_SXM_HEAD,
              name_patterns=(r"H100.*(SXM|HBM3)", r"H100 80GB HBM3")),
    Datasheet("H100 NVL 94GB", 30 * TERA, 60 * TERA, 60 * TERA, 417.5 * TERA, 835.5 * TERA, 1670.5 * TERA,
              3.9e12, "HBM3", 400, _H100_SRC, notes="TDP is the top of the 350-400 W range",
              headline_flop_s=_HOPPER_NVL_HEAD,
              name_patterns=(r"H100 NVL",)),
    Datasheet("H100 PCIe 80GB", 26 * TERA, 51 * TERA, 51 * TERA, 378 * TERA, 756.5 * TERA, 1513 * TERA,
              2.0e12, "HBM2e", 350, _H100_SRC, notes="TDP is the top of the 300-350 W range",
              headline_flop_s=_H100_PCIE_HEAD,
              name_patterns=(r"H100 PCIe",)),
    Datasheet("H200 NVL 141GB", 30 * TERA, 60 * TERA, 60 * TERA, 417.5 * TERA, 835.5 * TERA, 1670.5 * TERA,
              4.8e12, "HBM3e", 600, _H200_SRC, notes="TDP is the top of the configurable range (up to 600 W)",
              headline_flop_s=_HOPPER_NVL_HEAD,
              name_patterns=(r"H200 NVL",)),
    Datasheet("H200 SXM 141GB", 34 * TERA, 67 * TERA, 67 * TERA, 494.7 * TERA, 989.4 * TERA, 1978.9 * TERA,
              4.8e12, "HBM3e", 700, _H200_SRC, headline_flop_s=_H100_SXM_HEAD,
              name_patterns=(r"H200(?! NVL)",)),
    Datasheet("A100 SXM4 80GB", 9.7 * TERA, 19.5 * TERA, 19.5 * TERA, 156 * TERA, 312 * TERA, None,
              2.039e12, "HBM2e", 400, _A100_SRC, headline_flop_s=_A100_HEAD,
              name_patterns=(r"A100.*SXM4?-80GB", r"A100-SXM-80GB")),
    Datasheet("A100 SXM4 40GB", 9.7 * TERA, 19.5 * TERA, 19.5 * TERA, 156 * TERA, 312 * TERA, None,
              1.555e12, "HBM2", 400, _A100_SRC, headline_flop_s=_A100_HEAD,
              name_patterns=(r"A100.*SXM4?-40GB",)),
    Datasheet("A100 PCIe 80GB", 9.7 * TERA, 19.5 * TERA, 19.5 * TERA, 156 * TERA, 312 * TERA, None,
              1.935e12, "HBM2e", 300, _A100_SRC, headline_flop_s=_A100_HEAD,
              name_patterns=(r"A100 80GB PCIe", r"A100-PCIE-80GB")),
    Datasheet("A100 PCIe 40GB", 9.7 * TERA, 19.5 * TERA, 19.5 * TERA, 156 * TERA, 312 * TERA, None,
              1.555e12, "HBM2", 250, _A100_SRC, headline_flop_s=_A100_HEAD,
              name_patterns=(r"A100-PCIE-40GB", r"A100 PCIe 40GB")),
    Datasheet("L40S", None, None, 91.6 * TERA, 183 * TERA, 362.05 * TERA, 733 * TERA,
              864e9, "GDDR6", 350, _L40S_SRC, notes="no FP64 figure on the datasheet",
              headline_flop_s=_L40S_HEAD,
              name_patterns=(r"L40S",)),
    Datasheet("RTX 6000 Ada", None, None, 91.1 * TERA, 182.1 * TERA, 364.2 * TERA, 728.5 * TERA,
              960e9, "GDDR6", 300, _ADA_SRC, notes="no FP64 figure on the datasheet",
              headline_flop_s=_ADA_HEAD,
              name_patterns=(r"RTX 6000 Ada",)),
    Datasheet("RTX A6000", None, None, 38.7 * TERA, 77.4 * TERA, 154.8 * TERA, None,
              768e9, "GDDR6", 300, _A6000_SRC, notes="no FP64 figure on the datasheet; no FP8",
              headline_flop_s=_A6000_HEAD,
              name_patterns=(r"RTX A6000",)),
)


def datasheet_for(gpu_name: str) -> Datasheet | None:
    """The datasheet entry whose pattern matches an NVML/torch GPU name, or None (no guessing)."""
    for sheet in DATASHEETS:
        if any(re.search(p, gpu_name, flags=re.IGNORECASE) for p in sheet.name_patterns):
            return sheet
    return None
