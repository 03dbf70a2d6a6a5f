#!/usr/bin/env bash
# Device call F (H200, ~8 min): the four GPU tests that failed in calls D/E after their fixes, then the
# issue-18 ladder on the 8B shape (rungs stream to $OUT/ladder.jsonl, so a cut-off run keeps its rungs).
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 KERNELPROF_GIT_REVISION=${REV:-unknown}
t0=$SECONDS
timeout 200 python -m pytest -v -m gpu tests/test_crash_resume_gpu.py tests/test_ladder.py tests/test_measure_gpu.py \
  -p no:cacheprovider --timeout 170 --tb=short -rfE --junitxml="$OUT/gpu-junit-fixed.xml" > "$OUT/gpu-tests-fixed.log" 2>&1
echo "fixed tests rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
left=$((${TOTAL_S:-530} - (SECONDS - t0)))
timeout $left python -m kernelprof ladder --model llama-3.1-8b --batch 8 --input-len 512 --output-len 128 \
  --repeats ${REPEATS:-2} --out "$OUT/ladder.jsonl" --results --plot "$OUT/ladder-h200.png" > "$OUT/ladder.log" 2>&1
echo "ladder rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
cp benchmarks/results/ladder-h200.json "$OUT/" 2>/dev/null
