"""Fused pointwise kernels of the Llama block (RMSNorm, RoPE, SwiGLU) and their PyTorch references."""
