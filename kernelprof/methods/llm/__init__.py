"""The LLM workload: a Llama-shaped model, fixed-length generation, phase energy."""
