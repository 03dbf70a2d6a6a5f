"""ncu metric names the counters run asks for, and the tolerances of its verdicts, each with its reason."""
from __future__ import annotations


# Tensor-pipe math ops by source dtype. Each is 2 per multiply-add (verified for bf16 on H100:
# exactly 2MNK for a cuBLAS GEMM; assumed for the other sources, which ncu describes the same way).
TENSOR_FLOP_METRICS: dict[str, str] = {
    "bf16": "sm__ops_path_tensor_src_bf16_dst_fp32.sum",
    "fp16": "sm__ops_path_tensor_src_fp16.sum",
    "tf32": "sm__ops_path_tensor_src_tf32_dst_fp32.sum",
    "fp8": "sm__ops_path_tensor_src_fp8.sum",
    "fp64": "sm__ops_path_tensor_src_fp64.sum",
}
# Which instruction path did it: warpgroup MMA (wgmma, Hopper) or warp MMA (mma.sync).
TENSOR_PATH_METRICS: dict[str, str] = {
    "bf16 wgmma": "sm__ops_path_tensor_op_hgmma_src_bf16_dst_fp32.sum",
    "bf16 mma.sync": "sm__ops_path_tensor_op_hmma_src_bf16_dst_fp32.sum",
    "fp16 wgmma": "sm__ops_path_tensor_op_hgmma_src_fp16.sum",
    "fp16 mma.sync": "sm__ops_path_tensor_op_hmma_src_fp16.sum",
}
# FMA-pipe FLOPs per thread instruction, as ncu's roofline counts them: FMA = 2, ADD = MUL = 1.
# A packed half2 instruction (HFMA2) counts once here although it does two lanes' work.
_SASS = "smsp__sass_thread_inst_executed_op_{}_pred_on.sum"
FMA_FLOP_METRICS: dict[str, dict[str, int]] = {
    "fp32": {_SASS.format("ffma"): 2, _SASS.format("fadd"): 1, _SASS.format("fmul"): 1},
    "fp16": {_SASS.format("hfma"): 2, _SASS.format("hadd"): 1, _SASS.format("hmul"): 1},
    "fp64": {_SASS.format("dfma"): 2, _SASS.format("dadd"): 1, _SASS.format("dmul"): 1},
}
DURATION = "gpu__time_duration.sum"
DRAM_READ = "dram__bytes_read.sum"
DRAM_WRITE = "dram__bytes_write.sum"
L2_BYTES = "lts__t_bytes.sum"
# Rollups of ncu's own sections (Occupancy, SpeedOfLight); not in the H100 probe capture, so a
# run that ncu refuses with them is retried with the core list (see measure_counters).
OCCUPANCY = "sm__warps_active.avg.pct_of_peak_sustained_active"
SM_THROUGHPUT = "sm__throughput.avg.pct_of_peak_sustained_elapsed"
MEMORY_THROUGHPUT = "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"
DRAM_THROUGHPUT = "dram__throughput.avg.pct_of_peak_sustained_elapsed"
SM_CLOCK = "gpc__cycles_elapsed.avg.per_second"

CORE_METRICS: list[str] = ([DURATION, DRAM_READ, DRAM_WRITE, L2_BYTES]
                           + list(TENSOR_FLOP_METRICS.values()) + list(TENSOR_PATH_METRICS.values())
                           + [m for group in FMA_FLOP_METRICS.values() for m in group])
OPTIONAL_METRICS: list[str] = [OCCUPANCY, SM_THROUGHPUT, MEMORY_THROUGHPUT, DRAM_THROUGHPUT, SM_CLOCK]
_PERCENT_METRICS = (OCCUPANCY, SM_THROUGHPUT, MEMORY_THROUGHPUT, DRAM_THROUGHPUT)
_KEEP_LAUNCH = ("launch__registers_per_thread", "launch__grid_size", "launch__block_size",
                "launch__waves_per_multiprocessor", "launch__occupancy_limit_registers",
                "launch__occupancy_limit_shared_mem", "profiler__replayer_passes")

# Tolerances, each with its reason (shown beside every verdict).
FLOP_TOLERANCE = 0.01
FLOP_TOLERANCE_WHY = ("tensor-pipe counters count every executed MMA exactly (a cuBLAS 4096^3 GEMM read exactly "
                      "2MNK), so more than 1% off is work really done or skipped, not noise")
READ_TOLERANCE = 0.05
READ_TOLERANCE_WHY = ("ncu flushed L2 before the kernel, so each input byte comes from DRAM at least once; 5% "
                      "covers 32-byte sector granularity and small side reads (lengths, scales, descriptors)")
READ_TOLERANCE_WHY_WARM = ("L2 was not flushed (--cache-control none): inputs left in L2 by the warm-up may not "
                           "reach DRAM; 5% as with a flushed cache")
WRITE_TOLERANCE = 0.05
WRITE_TOLERANCE_WHY = ("the output reaches DRAM once, but L2 writes back lazily and ncu counts only write-backs "
                       "made before the kernel ends; 5% covers sector granularity")
