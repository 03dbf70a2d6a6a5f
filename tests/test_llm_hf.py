"""kernelprof's Llama against Hugging Face's LlamaForCausalLM with the same weights (CPU, fp32, tiny)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("triton")

from kernelprof.methods.llm.hf_baseline import hf_model  # noqa: E402
from kernelprof.methods.llm.config import get_config  # noqa: E402
from kernelprof.methods.llm.model import Llama  # noqa: E402

pytestmark = pytest.mark.interpreter
CFG = get_config("tiny")


def _rope_perm(head_dim: int) -> torch.Tensor:
    # HF rotates channel j with j + D/2 (rotate_half); kernelprof rotates adjacent pairs (2i, 2i+1),
    # as Meta's reference does. HF channel j is kernelprof channel perm[j].
    half = head_dim // 2
    return torch.tensor([2 * j if j < half else 2 * (j - half) + 1 for j in range(head_dim)])


def _copy_weights(ours: Llama, hf) -> None:
    D, perm = CFG.head_dim, _rope_perm(CFG.head_dim)

    def heads(w_out_in: torch.Tensor, n: int) -> torch.Tensor:  # permute each head's output rows
        return w_out_in.view(n, D, -1)[:, perm].reshape(n * D, -1)

    with torch.no_grad():
        hf.model.embed_tokens.weight.copy_(ours.tok_emb)
        for layer, blk in zip(ours.layers, hf.model.layers):
            q, k, v = layer["wqkv"].t().split([CFG.dim, CFG.kv_dim, CFG.kv_dim], dim=0)
            blk.self_attn.q_proj.weight.copy_(heads(q, CFG.n_heads))
            blk.self_attn.k_proj.weight.copy_(heads(k, CFG.n_kv_heads))
            blk.self_attn.v_proj.weight.copy_(v)
            blk.self_attn.o_proj.weight.copy_(layer["wo"].t())
            gate, up = layer["w13"].t().chunk(2, dim=0)
            blk.mlp.gate_proj.weight.copy_(gate)
            blk.mlp.up_proj.weight.copy_(up)
            blk.mlp.down_proj.weight.copy_(layer["w2"].t())
            blk.input_layernorm.weight.copy_(layer["attn_norm"])
            blk.post_attention_layernorm.weight.copy_(layer["mlp_norm"])
        hf.model.norm.weight.copy_(ours.norm)
        hf.lm_head.weight.copy_(ours.lm_head.t())


def test_same_weights_give_the_same_logits_as_transformers():
    ours = Llama(CFG, batch=2, max_len=32, device="cpu", dtype=torch.float32, attention="eager")
    hf = hf_model(CFG, device="cpu", dtype=torch.float32)
    _copy_weights(ours, hf)
    tokens = torch.randint(0, CFG.vocab_size, (2, 11), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = hf(tokens).logits[:, -1].float()
    got = ours.prefill(tokens)
    # fp32 both sides; only summation order differs.
    assert ((got - ref).norm() / ref.norm()).item() < 1e-4


def test_hf_generate_has_fixed_length():
    hf = hf_model(CFG, device="cpu", dtype=torch.float32)
    prompt = torch.randint(0, CFG.vocab_size, (2, 5))
    out = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=7, min_new_tokens=7,
                      do_sample=False)
    assert out.shape == (2, 12)


def test_compiled_rung_lets_generate_compile_itself():
    """transformers >= 4.48 compiles the forward inside generate for a static cache; wrapping the forward
    in torch.compile as well failed on the H200 (CUDAGraphs output overwritten), so the compiled rung
    passes a CompileConfig and leaves the forward alone."""
    pytest.importorskip("transformers")
    from kernelprof.methods.llm.hf_baseline import _generate_compiles_itself, _generate_kwargs

    assert _generate_kwargs(False) == {}
    kw = _generate_kwargs(True)
    assert kw["cache_implementation"] == "static"
    if _generate_compiles_itself():
        cc = kw["compile_config"]
        assert cc.mode == "reduce-overhead" and cc.fullgraph is True
