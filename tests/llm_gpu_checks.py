"""Shared GPU check for the LLM tests: a model's graph-replayed decode against the same model stepped
from Python (no graph) must pick the same greedy tokens."""
from __future__ import annotations


def assert_graph_decode_matches_stepped(model, mode: str, input_len: int, output_len: int) -> None:
    import torch

    from kernelprof.methods.llm.generate import DecodeGraph, GenerateShape, generate, random_prompt

    shape = GenerateShape(model.batch, input_len, output_len)
    prompt = random_prompt(model.cfg, shape)
    graphed = generate(model, prompt, shape, mode, graph=DecodeGraph(model, input_len, shape.decode_steps))
    first = model.prefill(prompt).argmax(-1)
    toks, tok = [first], first
    for i in range(shape.decode_steps):
        tok = model.decode_step(tok, torch.tensor([input_len + i], device="cuda"),
                                torch.full((model.batch,), input_len + i + 1, dtype=torch.int32,
                                           device="cuda")).argmax(-1)
        toks.append(tok)
    assert torch.equal(graphed, torch.stack(toks, 1))
