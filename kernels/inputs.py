"""Random inputs for the registry's ops: one seeded generator per call, normal values, a dtype check."""
from __future__ import annotations

import torch

from kernels.errors import ShapeError


def generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def randn(shape, dtype: torch.dtype, device: torch.device, g: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    # Normal values are never exactly zero in practice, and zeros would hide unwritten outputs.
    return (torch.randn(shape, generator=g, device=device, dtype=torch.float32) * scale).to(dtype)


def check_dtype(op: str, dtype: torch.dtype, allowed: tuple[torch.dtype, ...]) -> None:
    if dtype not in allowed:
        raise ShapeError(f"{op} inputs must be one of {[str(d).replace('torch.', '') for d in allowed]}, got {dtype}")
