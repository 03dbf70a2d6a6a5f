#!/usr/bin/env bash
# Device call E (H200, ~8 min): the crash-resume GPU test verbosely (it failed in call D), then the
# GPU tests that call D's 400 s limit did not reach (test_ladder.py onward, in collection order).
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 KERNELPROF_GIT_REVISION=${REV:-unknown}
t0=$SECONDS
timeout 120 python -m pytest -v -m gpu tests/test_crash_resume_gpu.py -p no:cacheprovider --tb=long > "$OUT/crash-resume.log" 2>&1
echo "crash_resume rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
rest=$(ls tests/test_*.py | sort | awk '$0 >= "tests/test_ladder.py"')
timeout ${REST_S:-340} python -m pytest -v -m gpu "tests/test_kernels_gpu.py::test_decode_ignores_cache_past_lengths" "tests/test_kernels_gpu.py::test_batched_decode_equals_one_request_at_a_time" "tests/test_kernels_gpu.py::test_every_variant_runs_or_says_why" $rest -p no:cacheprovider -rfEs --tb=short --durations=30 \
  --junitxml="$OUT/gpu-junit-rest.xml" > "$OUT/gpu-tests-rest.log" 2>&1
echo "rest rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
