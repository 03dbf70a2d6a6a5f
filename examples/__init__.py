"""Examples of kernelprof used from outside: a user's own Triton kernel, a program to profile."""
