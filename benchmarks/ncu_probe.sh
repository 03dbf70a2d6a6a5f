#!/usr/bin/env bash
# What this machine's Nsight Compute offers: version, the Hopper metric list, and one profiled
# torch matmul with candidate FLOP/DRAM metrics. A diagnostic for kernelprof's `counters` command.
#   OUT=/tmp/x bash benchmarks/ncu_probe.sh
set -u
out=${OUT:-/tmp}
ncu --version > "$out/ncu-version.txt" 2>&1
ncu --query-metrics --chip gh100 > "$out/ncu-metrics-gh100.txt" 2>&1
cat > /tmp/mm.py <<'PY'
import torch
a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    c = a @ b
torch.cuda.synchronize()
torch.cuda.nvtx.range_push("kernelprof_target")
c = a @ b
torch.cuda.nvtx.range_pop()
torch.cuda.synchronize()
PY
metrics=$(grep -oE '^(sm__ops_path_tensor[a-z0-9_]*|sm__inst_executed_pipe_tensor[a-z0-9_]*|smsp__sass_thread_inst_executed_op_[fhd](fma|add|mul)_pred_on|dram__bytes_read|dram__bytes_write|lts__t_bytes|gpu__time_duration|sm__warps_active|sm__throughput|gpu__compute_memory_throughput)' "$out/ncu-metrics-gh100.txt" | sort -u | head -60 | sed 's/$/.sum/' | paste -sd, -)
echo "metrics: $metrics" > "$out/ncu-probe.txt"
timeout 300 ncu --clock-control none --nvtx --nvtx-include "kernelprof_target/" --csv --page raw \
  --metrics "gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,$metrics" \
  python /tmp/mm.py >> "$out/ncu-probe.txt" 2>&1
echo "rc=$?" >> "$out/ncu-probe.txt"
tail -c 3000 "$out/ncu-probe.txt"
