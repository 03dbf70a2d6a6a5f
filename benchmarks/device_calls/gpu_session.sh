#!/usr/bin/env bash
# Run a batch of GPU work in one device call: `bash benchmarks/gpu_session.sh STAGE...`.
# Each stage logs to $OUT/logs/<stage>.log; everything the stages write (results, fixtures, traces,
# runs, logs) is bundled into $OUT/bundle.tgz so that one file carries it all back.
set -u
export PYTHONPATH=${PYTHONPATH:-.}
OUT=${OUT:-/tmp/kp-out}
mkdir -p "$OUT/logs" runs traces tests/data benchmarks/results
PY=${PY:-python}

stage_capture_start() {  # 5-minute no-lost-samples run, in the background while the rest works
  $PY benchmarks/power.py --capture-only --capture-seconds "${CAPTURE_S:-300}" > "$OUT/logs/capture.log" 2>&1 &
  echo $! > "$OUT/capture.pid"
}
stage_capture_wait() { [ -f "$OUT/capture.pid" ] && wait "$(cat "$OUT/capture.pid")"; tail -5 "$OUT/logs/capture.log"; }
stage_info() { $PY -m kernelprof info; $PY -m kernelprof ceilings; }
stage_gpu_tests() { $PY -m pytest -q -m gpu tests -p no:cacheprovider; }
stage_interp_tests() { TRITON_INTERPRET=1 $PY -m pytest -q -m interpreter tests -p no:cacheprovider; }
stage_fixtures() { $PY benchmarks/record_power_fixtures.py --out tests/data/; }
stage_sensor() { local t0=$SECONDS; $PY -m kernelprof sensor --out runs/sensor-h100.json; echo "sensor wall: $((SECONDS - t0)) s (1 s resolution, includes Python start-up)"; }
stage_power() { $PY benchmarks/power.py; }
stage_kernels() { $PY benchmarks/kernels.py; }
stage_timing() { $PY benchmarks/timing.py; }
stage_calibrate() { $PY -m kernelprof calibrate; }
stage_kernel_energy() { $PY benchmarks/kernel_energy.py; }
stage_sweeps() {
  for s in gemm attention decode; do $PY -m kernelprof sweep --suite "$s" --out "traces/sweep-$s-h100.jsonl" --resume; done
}
stage_compare() {
  $PY -m kernelprof compare attention --variants sdpa-flash,triton,sdpa-cudnn,sdpa-efficient,eager \
    --shape "b=4,h=32,s=4096,d=128,causal" --out traces/compare-attention-h100.json
}
stage_counters() { $PY -m pytest -q -m gpu tests/test_counters_gpu.py -p no:cacheprovider; $PY benchmarks/counters.py; }
stage_gemm_configs() { $PY benchmarks/gemm_configs.py; }
stage_llm_tests() { $PY -m pytest -q -m gpu tests/test_llm_gpu.py tests/test_measure_gpu.py -p no:cacheprovider; }
stage_llm_b1() {  # the short-prefill case: batch 1, with the phase fit and the prefill graph
  $PY benchmarks/llm.py --batches 1 --no-hf --profiles runs/llm-bench; }
stage_llm_8b() {
  for b in 1 8 64; do $PY -m kernelprof llm --model llama-3.1-8b --batch $b --input 512 --output 128 --mode optimized \
    --out traces/llm-llama-3.1-8b-b$b; done
}
stage_llm_kernels() {  # one 8B request with every kernel in its Perfetto trace (gzip: ~60k slices)
  $PY -m kernelprof llm --model llama-3.1-8b --batch 8 --input 512 --output 128 --mode optimized --kernel-slices \
    --min-inrun-s 0 --out traces/llm-llama-3.1-8b-b8-kernels && gzip -f traces/llm-llama-3.1-8b-b8-kernels-optimized.trace.json
}
stage_llm_b8() {  # the shipped `kernelprof llm` run: batch 8, with both steady-state references
  $PY -m kernelprof llm --model llama-3.1-8b --batch 8 --input 512 --output 128 --mode optimized \
    --out traces/llm-llama-3.1-8b-b8; }
stage_pointwise() { $PY benchmarks/pointwise.py; }
stage_power_tests() { $PY -m pytest -q -m gpu tests/test_power_gpu.py tests/test_timing_gpu.py -p no:cacheprovider; }
stage_kernel_trace_tests() { $PY -m pytest -q -m gpu tests/test_kernel_trace_gpu.py -p no:cacheprovider; }
stage_llm_bench() { $PY benchmarks/llm.py --profiles runs/llm-bench; }
stage_llm_eager() { $PY -m kernelprof llm --model llama-3.1-8b --batch 8 --input 512 --output 128 --mode both \
  --out traces/llm-llama-3.1-8b-b8; }
stage_workload_conv() {  # issue 6: the whole Azure conversation workload on the 8B shape, timed
  local t0=$SECONDS
  $PY -m kernelprof workload --trace azure-conv --model llama-3.1-8b --out traces/workload-azure-conv-llama-3.1-8b.jsonl \
    --profiles runs/workload-azure-conv-bins --resume
  echo "workload wall: $((SECONDS - t0)) s"
}
stage_workload_fresh() {  # a fresh run of the whole workload, against the previous one, and its results file
  mkdir -p runs/prev && cp traces/workload-azure-conv-llama-3.1-8b.jsonl runs/prev/ 2>/dev/null
  rm -f traces/workload-azure-conv-llama-3.1-8b.jsonl traces/workload-azure-conv-llama-3.1-8b.json
  stage_workload_conv
  $PY benchmarks/workload.py --from-run traces/workload-azure-conv-llama-3.1-8b.json \
    --previous runs/prev/workload-azure-conv-llama-3.1-8b.jsonl
}
stage_demo() { $PY -m kernelprof demo --out traces; }

for stage in "$@"; do
  echo "=== $stage $(date -u +%H:%M:%S)"
  start=$(date +%s)
  "stage_$stage" > "$OUT/logs/$stage.log" 2>&1
  rc=$?
  echo "=== $stage rc=$rc $(( $(date +%s) - start ))s"
  tail -n "${TAIL:-15}" "$OUT/logs/$stage.log"
  # Re-bundle after every stage: a call cut off by its time limit still brings back what finished.
  tar czf "$OUT/bundle.tgz.tmp" benchmarks/results tests/data traces runs -C "$OUT" logs 2>/dev/null
  mv "$OUT/bundle.tgz.tmp" "$OUT/bundle.tgz"
done
ls -la "$OUT"
