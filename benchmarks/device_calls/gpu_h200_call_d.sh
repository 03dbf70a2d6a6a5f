#!/usr/bin/env bash
# Device call D (H200, ~9 min): the whole GPU test suite (junit to $OUT), then the GEMM dispatcher
# tuner (issue 17) with what time is left; each step bounded by a timeout, outputs bundled per step.
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 KERNELPROF_GIT_REVISION=${REV:-unknown}
mkdir -p "$OUT/tune"
touch /tmp/marker
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.sm,temperature.gpu --format=csv > "$OUT/gpu.txt" 2>&1
t0=$SECONDS
bundle() { find benchmarks/results tests/data traces runs kernels -newer /tmp/marker -type f 2>/dev/null > /tmp/new.txt
           tar czf "$OUT/bundle.tgz" -T /tmp/new.txt 2>/dev/null; }
timeout ${TESTS_S:-400} python -m pytest -q -m gpu tests -p no:cacheprovider -rfEs --junitxml="$OUT/gpu-junit.xml" \
  --durations=25 > "$OUT/gpu-tests.log" 2>&1
echo "tests rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
bundle
left=$((${TOTAL_S:-560} - (SECONDS - t0)))
if [ $left -gt 40 ]; then
  timeout $left python benchmarks/gemm_tune.py --out "$OUT/tune" --budget-s $((left - 30)) > "$OUT/tune/gemm.log" 2>&1
  echo "gemm_tune rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
fi
bundle
