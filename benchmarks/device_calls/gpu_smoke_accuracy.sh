#!/usr/bin/env bash
# One device call for quick iteration: zeus wheels, the measure GPU tests, a short accuracy pass,
# and (with DISCIPLINE=1) the counter-discipline square waves.
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=.:/tmp/site; fi
nvidia-smi --query-gpu=name,driver_version,power.limit,temperature.gpu,clocks.sm --format=csv
timeout 150 python3 -m pytest -q -x tests/test_measure_gpu.py -k "not calibrate and not cli" 2>&1 | tail -3
python3 benchmarks/accuracy.py --cases "${CASES:-gemm-bf16-4096,copy-1gib,decode-b1-ctx1024-short}" --repeats "${REPEATS:-2}" --reference-s "${REF_S:-10}" ${ACC_ARGS:-} --detail $OUT/accuracy-detail.json 2>&1 | tail -20
cp benchmarks/results/accuracy-*.json $OUT/ 2>/dev/null
if [ "${DISCIPLINE:-0}" = 1 ]; then
  timeout 120 python3 benchmarks/counter_discipline.py --fixture tests/data/ 2>&1 | tail -15
  cp benchmarks/results/counter_discipline-*.json tests/data/power_duty_pinned* $OUT/ 2>/dev/null
fi
