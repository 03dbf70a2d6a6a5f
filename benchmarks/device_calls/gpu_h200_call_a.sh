#!/usr/bin/env bash
# Device call A (H200): the sensor characterization (shipped as traces/sensor-h200 and the H200's
# shipped profile), the first half of benchmarks/accuracy.py, and the calibration with leave-one-out.
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=.:/tmp/site
timeout 60 python3 -m kernelprof sensor --out $OUT/sensor-h200.json 2>&1 | tail -25
python3 -m kernelprof.attribution.shipped_profiles $OUT/sensor-h200.json && cp kernelprof/data/sensor_profiles/h200.json $OUT/
timeout 330 python3 benchmarks/accuracy.py --cases gemm-bf16-4096,gemm-bf16-8192,gemm-fp8-8192,attention-causal-s4096,decode-b16-ctx8192 --detail $OUT/accuracy-detail-a.json 2>&1 | tail -8
cp benchmarks/results/accuracy-h200.json $OUT/accuracy-h200-a.json
timeout 170 python3 -m kernelprof calibrate --results-dir $OUT 2>&1 | tail -30
