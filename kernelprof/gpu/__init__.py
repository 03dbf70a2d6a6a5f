"""The GPU's management edge: the one place kernelprof talks to NVML, and the facts about the GPUs.

Takes in: NVML (nvidia-ml-py) and torch's CUDA view of the machine.
Produces: NVML answers in SI units on NVML's epoch-microsecond clock, NVML errors mapped to
kernelprof's, and `GPUFacts` (name, UUID, driver, clocks, power limit) matched by UUID.

- `nvml`: every NVML call (mW, mJ and microsecond timestamps converted once, here).
- `devices`: which GPUs are visible (torch, merged with each registered vendor reader's devices:
  kernelprof.sampling.readers), `require_gpu` (one clear sentence when there is none), `gpu_facts`.
"""
