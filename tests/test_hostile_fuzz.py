"""Hypothesis fuzzing of the shape parser, the run-file loader, the JSONL reader and the CSV workload
loader: whatever comes, a clean kernelprof error or a sane result, never another exception.
Skips when hypothesis is not installed (it is in the `dev` extra)."""
from __future__ import annotations

import pytest

from kernelprof.errors import KernelprofError

hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.sampled_from(["gemm", "attention", "decode"]), st.text(max_size=60))
def test_fuzz_shape_parser(op_name, text):
    from kernels import get_op

    try:
        shape = get_op(op_name).parse_shape(text)
    except KernelprofError:
        return
    assert max(v for v in vars(shape).values() if isinstance(v, int) and not isinstance(v, bool)) <= 2**20


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_jsonl_reader(tmp_path_factory, data):
    from kernelprof.outputs.jsonl_store import read_store

    p = tmp_path_factory.mktemp("jl") / "f.jsonl"
    p.write_bytes(data)
    try:
        r = read_store(p)
    except KernelprofError:
        return
    assert all(isinstance(k, str) and rec["status"] in ("ok", "failed") for k, rec in r.records.items())


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                     max_leaves=12)


@FUZZ
@given(st.fixed_dictionaries({"format": st.sampled_from(["kernelprof-run", "x"]), "version": _JSON,
                              "kind": _JSON, "payload": _JSON, "environment": _JSON, "arrays": _JSON}))
def test_fuzz_run_file_loader(tmp_path_factory, doc):
    import json

    from kernelprof.outputs.runfile import load_run

    p = tmp_path_factory.mktemp("run") / "r.json"
    p.write_text(json.dumps(doc))
    try:
        load_run(p)
    except KernelprofError:
        pass


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), max_size=5), st.booleans())
def test_fuzz_csv_workload_loader(tmp_path_factory, rows, azure_header):
    from kernelprof.methods.workloads import load_csv

    head = "ContextTokens,GeneratedTokens" if azure_header else "input_len,output_len"
    p = tmp_path_factory.mktemp("csv") / "w.csv"
    p.write_text(head + "\n" + "".join(f"{a},{b}\n" for a, b in rows), encoding="utf-8")
    try:
        w = load_csv(p)
    except KernelprofError:
        return
    assert w.requests == len(rows) and (w.input_lens >= 1).all() and (w.output_lens >= 1).all()
