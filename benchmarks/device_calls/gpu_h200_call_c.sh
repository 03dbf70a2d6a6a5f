#!/usr/bin/env bash
# Device call C (H200, ~4 min of device time in all): the per-kernel regression against isolated
# measurements (issue 15), a `kernelprof run` of the demo program for the README, and the decode
# tuner's headline points (issue 17), in that order of importance; each step bounded by a timeout.
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 KERNELPROF_GIT_REVISION=${REV:-unknown}
mkdir -p "$OUT/tune" "$OUT/runs"
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.sm,temperature.gpu --format=csv > "$OUT/gpu.txt" 2>&1
t0=$SECONDS
timeout 95 python benchmarks/kernel_attribution.py --save "$OUT/runs/kattr-mix.json" > "$OUT/kattr.log" 2>&1
echo "kattr rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
cp benchmarks/results/kernel-attribution-h200.json "$OUT/" 2>/dev/null
timeout 35 python -m kernelprof run -o "$OUT/runs/demo.json" -- python examples/program_demo.py --seconds 8 > "$OUT/demo.log" 2>&1
echo "demo rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
timeout 10 python -m kernelprof report "$OUT/runs/demo.json" --by kernel > "$OUT/demo-report.txt" 2>&1
left=$((150 - (SECONDS - t0)))
if [ $left -gt 30 ]; then
  timeout $left python benchmarks/decode_tune.py --out "$OUT/tune" --budget-s $((left - 25)) > "$OUT/tune/decode.log" 2>&1
  echo "decode rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
fi
