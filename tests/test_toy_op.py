"""Adding an op is one `OpSpec` and one `register_op` call: a toy op flows through the whole path.

TEST DOUBLE: `toy-scale` (y = 2 * x over n elements) exists only in this file. It is not a kernel the
profiler ships; it stands in for a new op folder (kernels/<name>/op.py + tiles.py) to show that the
shared code (the resolver, the counts, the tile model and counter verdicts, the ncu target's tile
read-out, the CLI's argument checks) reaches an op only through the registry. CPU only, no GPU.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from kernels.errors import ShapeError
from kernels.op_spec import OpSpec, TileModel, cdiv, element_size, tile_int
from kernels.registry import get_op, list_ops, register_op, unregister_op
from kernels.validate import parse_key_values, parse_positive_int

NAME = "toy-scale"
BLOCK = 256  # the "blocked" variant's tile: whole blocks of 256 elements, the tail block padded


@dataclass(frozen=True)
class ToyShape:
    """x [n] -> y [n]."""

    n: int

    def __str__(self) -> str:
        return f"n={self.n}"


def parse_toy_shape(text: str) -> ToyShape:
    kv = parse_key_values(text, what=NAME, example="n=4096")
    if set(kv) != {"n"}:
        raise ShapeError(f"{NAME} shape must be 'n=<elements>' (e.g. 'n=4096'), got {text!r}")
    return ToyShape(parse_positive_int(kv["n"], key="n", text=text, example="n=4096"))


def make_toy_inputs(shape: ToyShape, dtype: torch.dtype, device: torch.device, seed: int = 0) -> tuple:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return (torch.randn(shape.n, generator=g, device=device).to(dtype),)


def _blocked(x: torch.Tensor) -> torch.Tensor:
    padded = torch.zeros(cdiv(x.numel(), BLOCK) * BLOCK, dtype=x.dtype, device=x.device)
    padded[:x.numel()] = x
    return (padded * 2)[:x.numel()]


def _computed_flops(variant: str, shape: ToyShape, tile: dict[str, Any], cc: str | None) -> tuple[int | None, str]:
    block = tile_int(tile, "BLOCK")
    if variant != "blocked" or not block:
        return None, "tile unknown for this variant"
    return cdiv(shape.n, block) * block, f"whole blocks of {block}"


TOY = OpSpec(
    name=NAME, shape_type=ToyShape, parse_shape=parse_toy_shape, make_inputs=make_toy_inputs,
    variants={"eager": lambda x: x * 2, "blocked": _blocked},
    flops=lambda s: s.n,                                      # one multiply per element
    min_bytes=lambda s, dtype: 2 * s.n * element_size(dtype),  # x read once, y written once
    output_bytes=lambda s, dtype: s.n * element_size(dtype),
    dtypes=(torch.float32, torch.bfloat16), default_shape="n=4096",
    tiles=TileModel(computed_flops=_computed_flops,
                    reread_cause=lambda shape, tile, ratio: "toy: every block re-reads its neighbour's halo",
                    tile_config=lambda variant, inputs: {"BLOCK": BLOCK} if variant == "blocked" else {}))


@pytest.fixture
def toy():
    register_op(TOY)
    try:
        yield get_op(NAME)
    finally:
        unregister_op(NAME)


def test_one_call_registers_it_and_the_builtins_stay(toy):
    assert toy is TOY and list_ops()[:3] == ["gemm", "attention", "decode"] and NAME in list_ops()
    from kernels.errors import KernelError

    with pytest.raises(KernelError, match="registered already"):
        register_op(TOY)


def test_the_resolver(toy):
    from kernelprof.errors import UsageError
    from kernelprof.methods.ops import resolve_kernel

    req = resolve_kernel(NAME, None, None, "fp32")
    assert (req.op, req.variant, req.shape, req.dtype, req.torch_dtype) == (TOY, "eager", ToyShape(4096), "fp32",
                                                                           torch.float32)
    assert resolve_kernel(NAME, "blocked", "n=1000", "bfloat16").shape == ToyShape(1000)
    with pytest.raises(ShapeError, match="unknown variant 'fast' of toy-scale; valid: eager, blocked"):
        resolve_kernel(NAME, "fast", None, "fp32")
    with pytest.raises(ShapeError, match="must be 'n=<elements>'"):
        resolve_kernel(NAME, None, "m=3", "fp32")
    with pytest.raises(UsageError, match="fp8 is for gemm only"):  # which ops take fp8 comes from their dtypes
        resolve_kernel(NAME, None, None, "fp8")


def test_counts_and_variants_on_cpu(toy):
    shape = toy.parse_shape("n=1000")
    (x,) = toy.make_inputs(shape, torch.float32, torch.device("cpu"), 0)
    for fn in toy.variants.values():
        torch.testing.assert_close(fn(x), 2 * x)
    assert toy.flops(shape) == 1000 and toy.min_bytes(shape, torch.float32) == 8000


def test_tile_model_and_verdicts(toy):
    from kernelprof.estimates.counters import metrics, ncu, run as counters_run, target, tile_models

    (x,) = toy.make_inputs(toy.parse_shape("n=1000"), torch.float32, torch.device("cpu"), 0)
    tile = target.tile_config(NAME, "blocked", (x,))  # what the ncu target records after warm-up
    assert tile == {"BLOCK": 256}
    a = tile_models.analytic_counts(NAME, "blocked", "n=1000", "fp32", tile, None, None)
    assert (a.flops, a.computed_flops, a.min_bytes, a.output_bytes, a.min_read_bytes) == (1000, 1024, 8000, 4000, 4000)
    assert a.extra_read_bytes == 0 and a.computed_flops_note == "whole blocks of 256"
    # A synthetic ncu row: reads 1.5x the minimum, the output written once.
    k = ncu.NcuKernel(0, "toy_kernel", "(4, 1, 1)", "(256, 1, 1)",
                      {metrics.DRAM_READ: 6000.0, metrics.DRAM_WRITE: 4000.0, metrics.DURATION: 1e3},
                      {metrics.DURATION: "ns"})
    r = counters_run.build_result(NAME, "blocked", "n=1000", "fp32", [k], tile_config=tile)
    rows = {c.quantity: c for c in r.comparisons}
    assert rows["DRAM bytes read"].status == "above" and "halo" in rows["DRAM bytes read"].explanation
    assert rows["DRAM bytes written"].status == "agrees"
    # The variant without a tile model gets the generic answer; a known GPU gives the roofline time.
    h100 = tile_models.analytic_counts(NAME, "eager", "n=1000", "fp32", {}, "NVIDIA H100 80GB HBM3", "9.0")
    assert h100.computed_flops is None and h100.roofline_time_s == pytest.approx(8000 / 3.35e12, rel=0.01)


def test_a_sweep_file_names_it(toy, tmp_path):
    from kernelprof.methods.sweep import load_sweep_toml

    grid = tmp_path / "toy.toml"
    grid.write_text(f'[sweep]\nop = "{NAME}"\nshapes = ["n=10", "n=20"]\ndtypes = ["fp32"]\n')
    points = load_sweep_toml(grid).points
    assert [(p.variant, p.shape) for p in points] == [("eager", "n=10"), ("blocked", "n=10"), ("eager", "n=20"),
                                                       ("blocked", "n=20")]
    grid.write_text(f'[sweep]\nop = "{NAME}"\nshapes = ["n=-1"]\n')
    with pytest.raises(ShapeError, match="positive integer"):
        load_sweep_toml(grid)


def test_cli_checks_its_shape_without_a_gpu(toy, capsys):
    from kernelprof.cli.main import main

    assert main(["kernel", NAME, "--list"]) == 0
    assert "toy-scale: variants eager, blocked" in capsys.readouterr().out
    assert main(["kernel", NAME, "--shape", "n=0"]) == 2
    assert re.search(r"n in 'n=0' must be a positive integer", capsys.readouterr().err)
    assert main(["counters", NAME, "--variant", "fast"]) == 2
    assert "unknown variant 'fast' of toy-scale" in capsys.readouterr().err
