#!/usr/bin/env bash
# Device call B (H200): the second half of benchmarks/accuracy.py (written after every case), the
# calibration with leave-one-out, and the measure / counter-discipline GPU tests.
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=.:/tmp/site
timeout 340 python3 benchmarks/accuracy.py --cases decode-b16-ctx8192,decode-b1-ctx32768,copy-1gib,fma-fp32-lowpower,decode-b1-ctx1024-short --detail $OUT/accuracy-detail-b.json 2>&1 | tail -8
cp benchmarks/results/accuracy-h200.json $OUT/accuracy-h200-b.json
timeout 150 python3 -m kernelprof calibrate --no-subjects --results-dir $OUT 2>&1 | tail -32
timeout 60 python3 -m pytest -q tests/test_measure_gpu.py -k "not calibrate and not cli" tests/test_counter_discipline_gpu.py 2>&1 | tail -4
