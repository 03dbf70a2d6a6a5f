"""The LLM workload: a Llama-shaped model, fixed-length generation, phase energy.

Takes in: a model config (e.g. Llama-3.1-8B shapes, random weights), batch, prompt and output lengths.
Produces: `LLMResult` (joules per request, per prefill and per decode token, in-run, with each
reference method's estimate per phase; gaps by `gap_pct`) and, for a binned request trace, per-bin
records in JSONL and the workload total.

- `model`: `LlamaConfig`, the model (static KV cache), its FLOP and byte counts.
- `generate`: building the model, prefill and decode (CUDA graphs), memory checks.
- `result`: `LLMResult`, `PhaseEnergy`, `PhaseEstimate` (one per method), `gap_pct`; reads version-1 files.
- `run`: `run_llm`, the phases measured in-run (Profiler + phase fit) and looped alone (steady state).
- `cycle`: the phases cycled as in the run (one prefill, then decode steps at a fixed context).
- `marginal`: joules per kernel class per phase by running one class twice (`kernelprof llm --class-marginals`).
- `floor`: the roofline floor of a batch from the copy bandwidth and matmul rate measured on the card.
- `binned`: the paper's binned workload estimate, one batch per bin, resumable.
- `hf_baseline`: the same generation through Hugging Face transformers, for comparison.
- `bin_store`: the per-bin JSONL of a binned workload (the shared resumable store).
- `tensor_parallel`, `tp_run`, `tp_ranks`: the model split over GPUs with NCCL, each rank's run,
  and the ranks' records joined.
"""
