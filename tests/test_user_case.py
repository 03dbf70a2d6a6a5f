"""Users' own kernels: the make_case protocol, its errors, and examples/triton_softmax.py run in the
Triton interpreter on CPU (fp32/fp16 at small shapes) against torch.softmax; a gpu test measures it."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from kernelprof.errors import UsageError
from kernelprof.methods.user_case import UserCase, build_case, load_factory, user_op

ROOT = Path(__file__).resolve().parents[1]
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def test_factory_gets_only_the_keywords_it_declares(tmp_path):
    f = tmp_path / "mycase.py"
    f.write_text(textwrap.dedent("""
        from kernelprof.methods.user_case import UserCase
        def make_case(shape=None):
            return UserCase(fn=len, inputs=([1, 2],), flops=3, min_bytes=4, shape=shape or "dflt")
        def as_tuple(**kw):
            return (len, ([1],), 1, 2)
        def wrong():
            return 42
        def negative():
            return UserCase(fn=len, flops=-1)
    """))
    c = build_case(f"{f}:make_case", shape="7x7", dtype="fp16", device=3)
    assert (c.shape, c.flops, c.min_bytes, c.fn(*c.inputs)) == ("7x7", 3, 4, 2)
    t = build_case(f"{f}:as_tuple", dtype="fp32")
    assert isinstance(t, UserCase) and t.dtype == "fp32" and t.min_bytes == 2.0
    with pytest.raises(UsageError, match="must return a UserCase"):
        build_case(f"{f}:wrong")
    with pytest.raises(UsageError, match="flops must be a number >= 0"):
        build_case(f"{f}:negative")
    with pytest.raises(UsageError, match="has no function"):
        load_factory(f"{f}:nope")
    with pytest.raises(UsageError, match="MODULE:FUNCTION"):
        load_factory("no_colon")
    with pytest.raises(UsageError, match="cannot import"):
        load_factory("no_such_pkg_kp.mod:make_case")


def test_user_op_and_sweep_grid_with_fn():
    from kernelprof.methods.sweep import spec_from_dict

    op = user_op("examples.triton_softmax:make_case", "triton,torch")
    assert op.name == "fn:examples.triton_softmax:make_case" and list(op.variants) == ["triton", "torch"]
    spec = spec_from_dict({"fn": "examples.triton_softmax:make_case", "variants": ["triton", "torch"],
                           "dtypes": ["fp16"], "shapes": ["4096x4096", "8192x8192"]})
    assert spec.name == "fn-examples.triton_softmax-make_case"
    assert [p.key for p in spec.points][:2] == ["fn:examples.triton_softmax:make_case/triton/fp16/4096x4096",
                                                "fn:examples.triton_softmax:make_case/torch/fp16/4096x4096"]
    with pytest.raises(UsageError, match="one of them"):
        spec_from_dict({"fn": "examples.triton_softmax:make_case", "op": "gemm", "shapes": ["1x1x1"]})


def test_cli_kernel_needs_op_or_fn(capsys):
    from kernelprof.cli.main import main

    assert main(["kernel"]) != 0
    assert "--fn" in capsys.readouterr().err
    assert main(["kernel", "gemm", "--fn", "examples.triton_softmax:make_case"]) != 0
    assert "not both" in capsys.readouterr().err


@pytest.mark.interpreter
@pytest.mark.skipif(not INTERPRET, reason="runs the Triton kernel in the interpreter (TRITON_INTERPRET=1)")
@pytest.mark.parametrize("dtype,shape,atol", [
    ("fp32", "4x100", 1e-6),   # 100 columns: not a power of two, the mask matters
    ("fp32", "3x257", 1e-6),
    ("fp16", "5x64", 2e-3),    # fp16 output: half an ulp near 0.03 is ~1.5e-5, the reference rounds too
])
def test_triton_softmax_matches_torch_in_the_interpreter(dtype, shape, atol):
    import torch

    from examples.triton_softmax import make_case

    case = make_case(shape=shape, dtype=dtype, device="cpu")
    got = case.fn(*case.inputs)
    x = case.inputs[0]
    ref = torch.softmax(x.float(), dim=-1).to(x.dtype)
    torch.testing.assert_close(got, ref, atol=atol, rtol=0)
    assert torch.allclose(got.float().sum(dim=-1), torch.ones(x.shape[0]), atol=1e-2 if dtype == "fp16" else 1e-5)
    rows, cols = (int(v) for v in shape.split("x"))
    assert case.min_bytes == 2 * rows * cols * x.element_size() and case.flops == 5 * rows * cols


@pytest.mark.gpu
def test_triton_softmax_measured_on_gpu():
    import torch

    from kernelprof.methods.kernel_energy import measure_op

    case = build_case("examples.triton_softmax:make_case", shape="8192x8192", dtype="fp16")
    torch.testing.assert_close(case.fn(*case.inputs), torch.softmax(case.inputs[0].float(), -1).half(),
                               atol=2e-3, rtol=0)
    ke = measure_op("fn:examples.triton_softmax:make_case", "triton", "8192x8192", "fp16")
    assert ke.op == "fn:examples.triton_softmax:make_case" and ke.shape == "8192x8192"
    m = ke.measurement
    assert m["energy_per_call_j"] > 0 and m["mean_power_w"] > m["idle_power_w"]
    # A fused softmax is memory bound: 268 MB per call should stream at over 1 TB/s on a Hopper card.
    assert m["achieved_bytes_s"] > 1e12
