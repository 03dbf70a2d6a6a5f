#!/usr/bin/env bash
# One device call: zeus wheels, the measure GPU tests, and a short accuracy pass (quick iteration).
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=.:/tmp/site; fi
nvidia-smi --query-gpu=name,driver_version,power.limit,temperature.gpu,clocks.sm --format=csv
python3 -c "import zeus.profile; print('zeus ok')" 2>&1 | tail -1
timeout 150 python3 -m pytest -q -x tests/test_measure_gpu.py -k "not calibrate and not cli" 2>&1 | tail -5
python3 benchmarks/accuracy.py --cases "${CASES:-gemm-bf16-4096,copy-1gib,decode-b1-ctx1024-short}" --repeats "${REPEATS:-2}" --reference-s "${REF_S:-10}" --detail $OUT/accuracy-detail.json 2>&1 | tail -20
cp benchmarks/results/accuracy-*.json $OUT/ 2>/dev/null
