"""Triton GEMM, C = A @ B with A [M, K], B [K, N]: a tiled kernel with grouped tile order, and a
persistent kernel that moves tiles with TMA tensor descriptors (Hopper and later).

Inputs bf16 or fp16 give C in the same dtype; fp8 e4m3 inputs (capability >= 8.9) take per-tensor
float32 scales and give C = (scale_a * A) @ (scale_b * B) in bf16; fp32 inputs give fp32 (the
tensor cores compute them in tf32 on the GPU, exactly under the CPU interpreter). Accumulation is
always fp32. M, N and K are arbitrary: edge tiles are masked (tiled kernel) or zero-filled and
clipped by TMA (persistent kernel).
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from kernels.errors import NotSupportedError, ShapeError
from kernels.gemm.dispatch import GemmConfig, choose_gemm_config
from kernels.validate import INTERPRET, check_out, check_tensor, check_triton_device, dtype_name

FP8_DTYPE = getattr(torch, "float8_e4m3fn", None)
FLOAT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
INPUT_DTYPES = FLOAT_DTYPES + ((FP8_DTYPE,) if FP8_DTYPE is not None else ())

# Whether this Triton has device-side tensor descriptors (TMA on Hopper); added in Triton 3.3/3.4.
HAS_TENSOR_DESCRIPTOR = hasattr(tl, "make_tensor_descriptor") and hasattr(triton, "set_allocator")


@triton.jit
def _tile_coords(tile_id, num_pid_m, num_pid_n, GROUP_SIZE_M: tl.constexpr):
    """Grouped tile order: walk GROUP_SIZE_M tile-rows column by column, so that the A rows and
    B columns a wave of programs reads stay in L2 (tutorial 03's 'L2 cache optimizations')."""
    num_pid_in_group = GROUP_SIZE_M * num_pid_n
    group_id = tile_id // num_pid_in_group
    first_pid_m = group_id * GROUP_SIZE_M
    group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_SIZE_M)
    pid_m = first_pid_m + ((tile_id % num_pid_in_group) % group_size_m)
    pid_n = (tile_id % num_pid_in_group) // group_size_m
    return pid_m, pid_n


@triton.jit
def _gemm_kernel(a_ptr, b_ptr, c_ptr, scale_a_ptr, scale_b_ptr,
                 M, N, K,
                 stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                 GROUP_SIZE_M: tl.constexpr, EVEN_K: tl.constexpr, HAS_SCALES: tl.constexpr):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    pid_m, pid_n = _tile_coords(pid, num_pid_m, num_pid_n, GROUP_SIZE_M)

    # Rows of A / columns of B past the edge are clamped to row 0 instead of masked: the loads stay
    # unmasked (vectorized) and the garbage rows only reach C rows that the store masks off.
    offs_am = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_bn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_am = tl.where(offs_am < M, offs_am, 0)
    offs_bn = tl.where(offs_bn < N, offs_bn, 0)
    offs_am = tl.max_contiguous(tl.multiple_of(offs_am, BLOCK_M), BLOCK_M)
    offs_bn = tl.max_contiguous(tl.multiple_of(offs_bn, BLOCK_N), BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for kt in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_left = K - kt * BLOCK_K
            a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
            b = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    if HAS_SCALES:
        acc = acc * (tl.load(scale_a_ptr) * tl.load(scale_b_ptr))
    c = acc.to(c_ptr.dtype.element_ty)
    offs_cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    c_ptrs = c_ptr + offs_cm[:, None] * stride_cm + offs_cn[None, :] * stride_cn
    tl.store(c_ptrs, c, mask=(offs_cm[:, None] < M) & (offs_cn[None, :] < N))


def _gemm_configs() -> list[triton.Config]:
    if INTERPRET:
        return [triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_SIZE_M": 4})]
    # Hopper-friendly tiles (bf16/fp16): 128x256x64 and 128x128x64 with 3-4 stages and 8 warps;
    # BLOCK_K=128 for fp8 (the same bytes per stage as 64 in bf16; OutOfResources for 16-bit types,
    # which the autotuner skips). Skinny M (decode-like GEMMs, M=16): 16-row tiles, narrow in N so
    # that enough programs stream B to fill the GPU.
    big = [
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_SIZE_M": 8}, num_stages=3, num_warps=8),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_SIZE_M": 8}, num_stages=4, num_warps=8),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_SIZE_M": 8}, num_stages=4, num_warps=8),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 128, "GROUP_SIZE_M": 8}, num_stages=3, num_warps=8),
    ]
    skinny = [
        triton.Config({"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 256, "GROUP_SIZE_M": 1}, num_stages=4, num_warps=4),
        triton.Config({"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128, "GROUP_SIZE_M": 1}, num_stages=4, num_warps=4),
        triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 128, "GROUP_SIZE_M": 8}, num_stages=4, num_warps=4),
        triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_SIZE_M": 8}, num_stages=4, num_warps=4),
    ]
    return big + skinny


def _prune_by_m(configs, named_args, **kwargs):
    """Compile and time only the tiles that suit M: 16/64-row tiles for M <= 64, otherwise the
    128-row tiles (64x128 stays in both sets for middle sizes)."""
    m = named_args["M"]
    if m <= 64:
        keep = [c for c in configs if c.kwargs["BLOCK_M"] <= 64]
    else:
        keep = [c for c in configs if c.kwargs["BLOCK_M"] >= 64]
    return keep or configs


def _even_k(args: dict) -> bool:
    return args["K"] % args["BLOCK_K"] == 0


_gemm_heuristic = triton.heuristics({"EVEN_K": _even_k})(_gemm_kernel)
# Autotune keys on the problem size and dtype class; under the interpreter there is one config.
_gemm_tuned = triton.autotune(configs=_gemm_configs(), key=["M", "N", "K", "HAS_SCALES"],
                              prune_configs_by={"early_config_prune": _prune_by_m})(_gemm_heuristic)


# --------------------------------------------------------------------------------------------
# Persistent kernel with TMA tensor descriptors: one program per SM loops over output tiles.
# --------------------------------------------------------------------------------------------
@triton.jit
def _gemm_persistent_tma_kernel(a_ptr, b_ptr, c_ptr, scale_a_ptr, scale_b_ptr,
                                M, N, K,
                                stride_am, stride_bk, stride_bn, stride_cm,
                                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                                GROUP_SIZE_M: tl.constexpr, EPILOGUE_SUBTILE: tl.constexpr, NUM_SMS: tl.constexpr,
                                B_K_CONTIGUOUS: tl.constexpr, HAS_SCALES: tl.constexpr):
    # Descriptors are built on the device (scratch from triton.set_allocator); TMA zero-fills
    # out-of-bounds reads and clips out-of-bounds writes, so edge tiles need no masks.
    a_desc = tl.make_tensor_descriptor(a_ptr, shape=[M, K], strides=[stride_am, 1], block_shape=[BLOCK_M, BLOCK_K])
    if B_K_CONTIGUOUS:
        # B is [K, N] with K contiguous (the transpose of a row-major [N, K]), e.g. fp8 for wgmma.
        b_desc = tl.make_tensor_descriptor(b_ptr, shape=[N, K], strides=[stride_bn, 1], block_shape=[BLOCK_N, BLOCK_K])
    else:
        b_desc = tl.make_tensor_descriptor(b_ptr, shape=[K, N], strides=[stride_bk, 1], block_shape=[BLOCK_K, BLOCK_N])
    # The epilogue may store the tile in two halves: half the shared-memory staging for C, which
    # leaves room for another pipeline stage of A and B.
    if EPILOGUE_SUBTILE:
        c_desc = tl.make_tensor_descriptor(c_ptr, shape=[M, N], strides=[stride_cm, 1],
                                           block_shape=[BLOCK_M, BLOCK_N // 2])
    else:
        c_desc = tl.make_tensor_descriptor(c_ptr, shape=[M, N], strides=[stride_cm, 1], block_shape=[BLOCK_M, BLOCK_N])

    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    k_tiles = tl.cdiv(K, BLOCK_K)
    num_tiles = num_pid_m * num_pid_n
    if HAS_SCALES:
        scale = tl.load(scale_a_ptr) * tl.load(scale_b_ptr)
    # The epilogue recomputes its tile from its own counter instead of reusing the main loop's
    # pid_m/pid_n: with flatten=True the compiler pipelines across tiles (the next tile's loads
    # start during this tile's epilogue), and a value shared by prologue and epilogue defeats that
    # (tutorial 09 does the same).
    tile_id_c = tl.program_id(0) - NUM_SMS
    for tile_id in tl.range(tl.program_id(0), num_tiles, NUM_SMS, flatten=True):
        pid_m, pid_n = _tile_coords(tile_id, num_pid_m, num_pid_n, GROUP_SIZE_M)
        off_m = pid_m * BLOCK_M
        off_n = pid_n * BLOCK_N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for kt in range(k_tiles):
            off_k = kt * BLOCK_K
            a = a_desc.load([off_m, off_k])
            if B_K_CONTIGUOUS:
                b = tl.trans(b_desc.load([off_n, off_k]))
            else:
                b = b_desc.load([off_k, off_n])
            acc = tl.dot(a, b, acc)
        if HAS_SCALES:
            acc = acc * scale

        tile_id_c += NUM_SMS
        pid_m_c, pid_n_c = _tile_coords(tile_id_c, num_pid_m, num_pid_n, GROUP_SIZE_M)
        off_cm = pid_m_c * BLOCK_M
        off_cn = pid_n_c * BLOCK_N
        if EPILOGUE_SUBTILE:
            halves = tl.permute(tl.reshape(acc, (BLOCK_M, 2, BLOCK_N // 2)), (0, 2, 1))
            acc0, acc1 = tl.split(halves)
            c_desc.store([off_cm, off_cn], acc0.to(c_ptr.dtype.element_ty))
            c_desc.store([off_cm, off_cn + BLOCK_N // 2], acc1.to(c_ptr.dtype.element_ty))
        else:
            c_desc.store([off_cm, off_cn], acc.to(c_ptr.dtype.element_ty))


def _persistent_configs() -> list[triton.Config]:
    if INTERPRET:
        return [triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_SIZE_M": 4,
                               "EPILOGUE_SUBTILE": True})]

    def cfg(bm, bn, bk, stages, warps, subtile):
        return triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_SIZE_M": 8,
                              "EPILOGUE_SUBTILE": subtile}, num_stages=stages, num_warps=warps)

    # Measured one by one against cuBLAS on an H100 (2026-11-26, benchmarks/gemm_configs.py, ABBA
    # paired): 128x256x64 3 stages 8 warps without subtiling 0.995x at 4096^3; with GROUP_SIZE_M=16
    # and subtiling 1.016x at 8192^3; 128x128 tiles and BLOCK_K=128 0.81-0.92x.
    return [
        cfg(128, 256, 64, 3, 8, True),
        cfg(128, 256, 64, 4, 8, True),
        cfg(128, 256, 64, 3, 8, False),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_SIZE_M": 16, "EPILOGUE_SUBTILE": True},
                      num_stages=3, num_warps=8),
        cfg(128, 128, 64, 4, 8, False),
        cfg(128, 256, 128, 3, 8, True),  # fp8 (OutOfResources for 16-bit types: skipped)
        cfg(64, 128, 64, 4, 4, False),
    ]


_persistent_tuned = triton.autotune(configs=_persistent_configs(),
                                    key=["M", "N", "K", "HAS_SCALES", "B_K_CONTIGUOUS"])(_gemm_persistent_tma_kernel)


@functools.lru_cache(maxsize=None)
def _num_sms(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 4  # the interpreter: a few persistent programs, so each loops over several tiles
    return _num_sms(device.index if device.index is not None else torch.cuda.current_device())


_ALLOCATOR_SET = False


def _ensure_tma_allocator() -> None:
    """Device-side descriptors need a global-memory scratch; hand Triton the torch allocator."""
    global _ALLOCATOR_SET
    if _ALLOCATOR_SET:
        return

    def alloc(size: int, alignment: int, stream):  # noqa: ARG001 (Triton's signature)
        return torch.empty(size, device="cuda" if torch.cuda.is_available() else "cpu", dtype=torch.int8)

    triton.set_allocator(alloc)
    _ALLOCATOR_SET = True


# --------------------------------------------------------------------------------------------
# Launch wrappers
# --------------------------------------------------------------------------------------------
def _check_gemm_inputs(a, b, scale_a, scale_b):
    check_tensor("a", a, dims=("M", "K"), dtypes=INPUT_DTYPES)
    check_triton_device(a)
    check_tensor("b", b, dims=("K", "N"), shape=(a.shape[1], None), dtypes=(a.dtype,), device=a.device)
    is_fp8 = FP8_DTYPE is not None and a.dtype == FP8_DTYPE
    if is_fp8:
        if a.device.type == "cuda" and torch.cuda.get_device_capability(a.device) < (8, 9):
            cap = torch.cuda.get_device_capability(a.device)
            raise NotSupportedError(f"fp8 e4m3 GEMM needs compute capability >= 8.9, this GPU has {cap[0]}.{cap[1]}")
        if scale_a is None or scale_b is None:
            raise ShapeError("fp8 inputs need per-tensor float32 scales scale_a and scale_b (tensors of one element), got None")
    if (scale_a is None) != (scale_b is None):
        raise ShapeError("give both scale_a and scale_b or neither")
    if scale_a is not None:
        for name, s in (("scale_a", scale_a), ("scale_b", scale_b)):
            if not isinstance(s, torch.Tensor) or s.numel() != 1 or s.dtype != torch.float32 or s.device != a.device:
                got = (f"{type(s).__name__}" if not isinstance(s, torch.Tensor)
                       else f"{dtype_name(s.dtype)} tensor of {s.numel()} elements on {s.device}")
                raise ShapeError(f"{name} must be a float32 tensor of one element on {a.device}, got {got}")
    return is_fp8


def _out_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.bfloat16 if (FP8_DTYPE is not None and dtype == FP8_DTYPE) else dtype


def gemm(a: torch.Tensor, b: torch.Tensor, scale_a: torch.Tensor | None = None,
         scale_b: torch.Tensor | None = None, *, out: torch.Tensor | None = None,
         config: GemmConfig | str | None = None) -> torch.Tensor:
    """C = A @ B (times scale_a * scale_b when given) with the tiled Triton kernel.

    a: [M, K], b: [K, N] (any strides), both bf16, fp16, fp32 or fp8 e4m3 (same dtype).
    scale_a, scale_b: float32 tensors of one element; required for fp8, optional otherwise.
    out: optional [M, N] tensor to write into (bf16 for fp8 inputs, else the input dtype).
    config: None lets kernels/gemm/dispatch.py choose (tuned table, else the skinny-M rule with
    split-K for M <= 64, else the autotuner); a GemmConfig runs as given; 'autotune' forces the
    autotuned path. fp8 always autotunes unless given a config. Returns C [M, N].
    """
    has_scales = _check_gemm_inputs(a, b, scale_a, scale_b) or scale_a is not None
    M, K = a.shape
    N = b.shape[1]
    c = check_out(out, (M, N), _out_dtype(a.dtype), a.device, last_dim_contiguous=False)
    if M == 0 or N == 0:
        return c
    if K == 0:
        return c.zero_()
    sa = scale_a if has_scales else c  # placeholders: never read when HAS_SCALES is False
    sb = scale_b if has_scales else c
    cfg = _dispatch(M, N, K, a.dtype, a.device) if config is None else config
    if isinstance(cfg, GemmConfig):
        if cfg.problems():
            raise ShapeError(f"gemm config {cfg}: {'; '.join(cfg.problems())}")
        from kernels.gemm.triton_splitk import gemm_configured

        return gemm_configured(a, b, c, sa, sb, has_scales, cfg)
    if cfg != "autotune":
        raise ShapeError(f"config must be a GemmConfig, 'autotune' or None, got {cfg!r}")
    args = (a, b, c, sa, sb, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1))

    def grid(meta):
        return (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)

    if INTERPRET:
        _gemm_heuristic[grid](*args, HAS_SCALES=has_scales, **_gemm_configs()[0].kwargs)
    else:
        _gemm_tuned[grid](*args, HAS_SCALES=has_scales)
    return c


@functools.lru_cache(maxsize=4096)
def _dispatch_cached(m: int, n: int, k: int, dtype_name_: str, device_index: int) -> GemmConfig | str:
    if device_index < 0:  # CPU tensors (the interpreter): the rule at a few "SMs", no table
        cfg = choose_gemm_config(m, n, k, dtype_name_, 4)
    else:
        props = torch.cuda.get_device_properties(device_index)
        cfg = choose_gemm_config(m, n, k, dtype_name_, props.multi_processor_count, gpu_name=props.name)
    return "autotune" if cfg is None else cfg


def _dispatch(m: int, n: int, k: int, dtype: torch.dtype, device: torch.device) -> GemmConfig | str:
    """The dispatcher's choice (cached per shape: the LLM calls this for every matmul)."""
    if dtype not in FLOAT_DTYPES:
        return "autotune"  # fp8: the wgmma tiles of the autotuner (small-M fp8 tl.dot is not tested)
    index = (device.index if device.index is not None else torch.cuda.current_device()) \
        if device.type == "cuda" else -1
    return _dispatch_cached(m, n, k, dtype_name(dtype), index)


def gemm_persistent(a: torch.Tensor, b: torch.Tensor, scale_a: torch.Tensor | None = None,
                    scale_b: torch.Tensor | None = None, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """C = A @ B with the persistent TMA kernel (needs Triton tensor descriptors and, on the GPU,
    compute capability >= 9.0).

    a: [M, K] with K contiguous; b: [K, N] with N contiguous, or with K contiguous (b = b_nk.T);
    rows must be 16-byte aligned (K and N multiples of 8 elements for 16-bit types, of 16 for fp8).
    Same dtypes, scales and `out` as `gemm`.
    """
    has_scales = _check_gemm_inputs(a, b, scale_a, scale_b) or scale_a is not None
    if not HAS_TENSOR_DESCRIPTOR:
        raise NotSupportedError(f"triton {triton.__version__} has no tl.make_tensor_descriptor / triton.set_allocator;"
                                " the persistent TMA GEMM needs Triton >= 3.4")
    if a.device.type == "cuda" and torch.cuda.get_device_capability(a.device)[0] < 9:
        raise NotSupportedError("the persistent TMA GEMM needs compute capability >= 9.0 (Hopper)")
    M, K = a.shape
    N = b.shape[1]
    es = a.element_size()
    if a.stride(1) != 1 or (a.stride(0) * es) % 16:
        raise NotSupportedError(f"TMA needs a with contiguous K and 16-byte aligned rows; got strides {list(a.stride())}"
                                f" for {dtype_name(a.dtype)} (use gemm())")
    if b.stride(1) == 1 and (b.stride(0) * es) % 16 == 0 and N > 1:
        b_k_contiguous = False
    elif b.stride(0) == 1 and (b.stride(1) * es) % 16 == 0:
        b_k_contiguous = True
    else:
        raise NotSupportedError(f"TMA needs b with a contiguous dimension and 16-byte aligned rows; got strides"
                                f" {list(b.stride())} for {dtype_name(b.dtype)} (use gemm())")
    c = check_out(out, (M, N), _out_dtype(a.dtype), a.device)
    if (c.stride(0) * c.element_size()) % 16:
        raise NotSupportedError(f"TMA needs 16-byte aligned rows of C; N={N} of {dtype_name(c.dtype)} is not (use gemm())")
    if M == 0 or N == 0:
        return c
    if K == 0:
        return c.zero_()
    _ensure_tma_allocator()
    sa = scale_a if has_scales else c
    sb = scale_b if has_scales else c
    num_sms = _sm_count(a.device)

    def grid(meta):
        return (min(num_sms, triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"])),)

    args = (a, b, c, sa, sb, M, N, K, a.stride(0), b.stride(0), b.stride(1), c.stride(0))
    if INTERPRET:
        _gemm_persistent_tma_kernel[grid](*args, NUM_SMS=num_sms, B_K_CONTIGUOUS=b_k_contiguous,
                                          HAS_SCALES=has_scales, **_persistent_configs()[0].kwargs)
    else:
        _persistent_tuned[grid](*args, NUM_SMS=num_sms, B_K_CONTIGUOUS=b_k_contiguous, HAS_SCALES=has_scales)
    return c
