"""Users' own kernels from the CLI: `kernelprof kernel --fn pkg.module:make_case` (also compare, sweeps).

The protocol. `make_case` is any function importable as `pkg.module:make_case` (or
`path/to/file.py:make_case`) that takes some of the keywords

    shape: str | None   the --shape text, as the user wrote it (None: the case's default)
    dtype: str          the --dtype ("bf16", "fp16", "fp32", "fp8")
    variant: str | None the variant being measured (compare, sweeps), None for the default
    device: int         the CUDA device index
    seed: int           for random inputs

(only those it declares are passed) and returns a `UserCase`:

    from kernelprof.methods.user_case import UserCase

    def make_case(shape=None, dtype="fp16", device=0):
        x = torch.randn(4096, 8192, device=f"cuda:{device}", dtype=torch.float16)
        return UserCase(fn=my_softmax, inputs=(x,), flops=5 * x.numel(), min_bytes=2 * x.nbytes,
                        dtype="fp16", shape="4096x8192")

`fn(*inputs)` is one call; `flops` and `min_bytes` are one call's analytic FLOPs and the fewest bytes
it must move (0 when they do not apply): they give the achieved rates, the roofline fraction and the
estimates. A tuple `(fn, inputs, flops, min_bytes)` is accepted too. `examples/triton_softmax.py` is
a complete one. The case is measured by `measure_kernel`, exactly as a built-in op.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kernelprof.errors import UsageError

USER_PREFIX = "fn:"  # op names of user cases in run files and sweep keys: "fn:pkg.module:make_case"
KEYWORDS = ("shape", "dtype", "variant", "device", "seed")


@dataclass(frozen=True)
class UserCase:
    """One call of a user's kernel, with the counts the estimates need (see the module docstring)."""

    fn: Callable[..., Any]
    inputs: tuple[Any, ...] = ()
    flops: float = 0.0
    min_bytes: float = 0.0
    dtype: str = "bf16"  # whose datasheet peak the estimates use
    name: str | None = None
    shape: str | None = None  # as printed
    variants: tuple[str, ...] = ()  # the names make_case(variant=...) takes, for compare's default


def load_factory(ref: str) -> Callable[..., Any]:
    """`pkg.module:make_case` or `file.py:make_case` -> the function (the working directory is importable)."""
    mod_name, sep, attr = ref.rpartition(":")
    if not sep or not mod_name or not attr:
        raise UsageError(f"--fn takes MODULE:FUNCTION (e.g. examples.triton_softmax:make_case), got {ref!r}")
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_file():
            raise UsageError(f"--fn {ref}: no file {path}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(path.stem, module)
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            raise UsageError(f"--fn {ref}: cannot import {mod_name} ({exc}); run from the folder it is importable "
                             "from, or give a path: path/to/file.py:make_case") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UsageError(f"--fn {ref}: {mod_name} has no function {attr!r}")
    return fn


def _call(factory: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory(**kwargs)
    return factory(**{k: v for k, v in kwargs.items() if k in params})


def build_case(ref: str, *, shape: str | None = None, dtype: str | None = None, variant: str | None = None,
               device: int = 0, seed: int = 0) -> UserCase:
    """Call the user's factory and check what it returned."""
    factory = load_factory(ref)
    kw = {"shape": shape, "dtype": dtype, "variant": variant, "device": device, "seed": seed}
    got = _call(factory, {k: v for k, v in kw.items() if v is not None or k in ("shape", "variant")})
    if isinstance(got, tuple) and len(got) == 4:
        got = UserCase(got[0], tuple(got[1]), float(got[2]), float(got[3]), dtype or "bf16")
    if not isinstance(got, UserCase):
        raise UsageError(f"--fn {ref} must return a UserCase (or (fn, inputs, flops, min_bytes)), got "
                         f"{type(got).__name__}")
    if not callable(got.fn):
        raise UsageError(f"--fn {ref}: UserCase.fn must be callable, got {type(got.fn).__name__}")
    for label in ("flops", "min_bytes"):
        v = getattr(got, label)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise UsageError(f"--fn {ref}: UserCase.{label} must be a number >= 0, got {v!r}")
    return got


def measure_user_op(op_name: str, variant: str | None, shape: str | None, dtype: str, *, device: int = 0,
                    config: Any = None, seed: int = 0, paper_convention: str = "headline") -> Any:
    """`measure_op` for op names "fn:MODULE:FUNCTION": build the case, measure it, attach the estimates."""
    from kernelprof.gpu.devices import gpu_facts, require_gpu
    from kernelprof.methods.kernel_energy import describe
    from kernelprof.methods.steady_state import measure_kernel

    require_gpu("kernelprof kernel --fn")
    ref = op_name[len(USER_PREFIX):] if op_name.startswith(USER_PREFIX) else op_name
    variant = None if variant in (None, "default") else variant
    case = build_case(ref, shape=shape, dtype=dtype, variant=variant, device=device, seed=seed)
    facts = gpu_facts(device)
    meas = measure_kernel(case.fn, *case.inputs, flops=float(case.flops), min_bytes=float(case.min_bytes),
                          dtype=case.dtype, name=case.name or ref, device=device, config=config)
    return describe(meas, op=USER_PREFIX + ref, variant=variant or "default", shape=case.shape or shape or "-",
                    dtype=case.dtype, gpu_name=facts.name, uuid=facts.uuid, driver=facts.driver_version,
                    paper_convention=paper_convention)


@dataclass(frozen=True)
class UserOp:
    """A user's case seen as a registry op (name, variants, default_shape, parse_shape), so that compare
    and sweeps take `--fn` / `fn = "..."` without code of their own."""

    name: str  # "fn:MODULE:FUNCTION"
    variants: dict[str, None]
    default_shape: str

    def parse_shape(self, text: str | None) -> str:
        return text or self.default_shape  # the factory parses its own shapes


def user_op(ref: str, variants: list[str] | str | None = None, *, probe: bool = True) -> UserOp:
    """The op for `ref`; its variants are `variants` if given, else what the factory's default case
    declares (probe=True builds that case once, on the GPU when the factory allocates there)."""
    if isinstance(variants, str):
        variants = [v for v in variants.split(",") if v]
    load_factory(ref)  # fail now on a bad reference, before any GPU work
    names = list(variants or [])
    if not names and probe:
        names = list(build_case(ref).variants)
    return UserOp(USER_PREFIX + ref, {v: None for v in names or ["default"]}, "-")
