"""Fused pointwise kernels of the Llama block (triton_pointwise: RMSNorm, RoPE, SwiGLU), the decode
step's fused launches (triton_decode_fused: RoPE + cache writes, residual add + RMSNorm), and their
PyTorch references (reference)."""
