"""GEMM C = A @ B: Triton tiled and persistent-TMA kernels, cuBLAS reference, FLOP/byte counts."""
from __future__ import annotations

from kernels.gemm.counts import gemm_flops, gemm_min_bytes
from kernels.gemm.dispatch import GemmConfig, choose_gemm_config
from kernels.gemm.reference import gemm_cublas, gemm_reference

try:  # the Triton kernels need triton; the references and counts do not
    from kernels.gemm.triton_gemm import HAS_TENSOR_DESCRIPTOR, gemm, gemm_persistent
except ImportError:  # pragma: no cover - only where triton is missing
    pass

__all__ = ["gemm", "gemm_persistent", "gemm_cublas", "gemm_reference", "gemm_flops", "gemm_min_bytes",
           "HAS_TENSOR_DESCRIPTOR", "GemmConfig", "choose_gemm_config"]
