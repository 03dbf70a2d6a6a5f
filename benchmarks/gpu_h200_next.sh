#!/usr/bin/env bash
# The next session's device calls: `bash benchmarks/gpu_h200_next.sh STEP [STEP...]`, steps in order.
# Done on 2026-12-04 (H200): tests_a, tests_b (e300645), rebase, power, llm, workload, verdicts, ladder_new,
# classes, discipline_sweep x2, accuracy (950a9ba), eager_rungs, wl_first azure-conv (complete), wl_last
# azure-code (56/56), wl_first azure-code (46/56). Done on 2026-12-07 (an H100, 2a062b4): new_gpu_tests,
# calib, flush_bias, attn_configs, decode_tune, llm, marginals, kattr, gemm_tune (logs h200-20261207-*).
# No machine could be started in the session of 12-07 23:47 (10 tries).
# Next, by priority (1800 s; a start costs 60-90 s, a failed one ~90 s; a call <= 600 s):
#   call 1: ladder_kp llm fp8_tests     (every kernelprof rung incl. the three new ones; the e2e floor;
#           the GPU tests written on CPU since 12-07: fp8, graph modes, tiny ladder, L2 flush)
#   call 2: accuracy                    (check_s = 0.25 s; its 12-07 H100 run was lost)
#   call 3: tests_a, tests_b            (the whole GPU suite, before resolving anything)
#   call 4: kattr_nocap                 (issue 15: the mix without the power-capped GEMM, so the limiter
#           cannot move the other kernels' clocks: does the regression then meet 5% against isolated?)
#   call 5: kernels_full                (issue 17: benchmarks/kernels.py full run with --energy -> kernels-<gpu>.json)
#   then: WL=burstgpt-fitted wl_last / wl_first; the whole ladder (hf rungs too) in one run; on an H200:
#   WL=azure-code wl_first (10 bins left; rung files resume only on the same kind of card).
# Each call may land on another card: the workload steps resume with --other-gpu from traces/ladder-<trace>-h200/,
# so copy each call's rung files back there and commit before the next call. Estimated step times:
#   bash benchmarks/gpu_h200_next.sh tests_a   # GPU tests, files before test_ladder.py (~430 s in call D)
#   bash benchmarks/gpu_h200_next.sh tests_b   # GPU tests, test_ladder.py onward (~170 s in call E)
#   bash benchmarks/gpu_h200_next.sh ladder    # a fresh 8B ladder in the store format (hf compile rung fixed)
#   bash benchmarks/gpu_h200_next.sh ladder_new  # only the two rungs never measured on the H200 (compile, max batch)
#   bash benchmarks/gpu_h200_next.sh accuracy  # accuracy.py without Zeus after the sampler changes (issue 12)
#   bash benchmarks/gpu_h200_next.sh verdicts  # issue 17: subject vs vendor J/call and verdicts (~5 min)
#   bash benchmarks/gpu_h200_next.sh discipline  # a fresh counter-discipline recording (the out-of-sample test)
#   bash benchmarks/gpu_h200_next.sh discipline_sweep  # the same at pin cadences 0.5, 0.2, 0.1 s (~90 s)
#   bash benchmarks/gpu_h200_next.sh kattr     # issue 15: the mix regression vs isolated settled AND burst state
#   bash benchmarks/gpu_h200_next.sh gemm_tune # the GEMM tuner again on an idle GPU (call D's run may have shared it; ~40 s)
#   bash benchmarks/gpu_h200_next.sh rebase    # issue 12 item 5: power, kernel-energy, timing, counters as -h200 (~7 min)
#   bash benchmarks/gpu_h200_next.sh power     # power.py alone (overhead incl. the 0.1 s pin cadence; ~110 s)
#   bash benchmarks/gpu_h200_next.sh llm       # benchmarks/llm.py without HF, 6 s in-run: llm-h200.json (issue 12)
#   bash benchmarks/gpu_h200_next.sh workload  # benchmarks/workload.py on azure-conv: workload-h200.json (~330 s on an H100)
#   bash benchmarks/gpu_h200_next.sh classes   # 8B llm with kernels, ~6 s in-run, per-phase class table (issue 15)
#   WL=azure-conv bash benchmarks/gpu_h200_next.sh wl_first  # workload ladder, kp-eager rung (issue 18)
#   WL=azure-code bash benchmarks/gpu_h200_next.sh wl_last   # workload ladder, kp-triton rung
#   bash benchmarks/gpu_h200_next.sh eager_rungs  # hf-eager and kp-eager at b8 on one card (batched eager decode)
#   bash benchmarks/gpu_h200_next.sh calib_smoke  # the one-process ncu split on 3 points (the new GPU test; ~40 s)
#   bash benchmarks/gpu_h200_next.sh calib     # issue 12: calibrate --counters, all 16 + 3 points (~4-6 min)
#   bash benchmarks/gpu_h200_next.sh fp8_tests  # GPU tests of 12-07/08: fp8 linear, tiny ladder (every kp rung), graph modes, L2 flush (~120 s)
#   bash benchmarks/gpu_h200_next.sh ladder_kp  # 8B b8, one repeat: every kernelprof rung, kp-eager to max batch on fp8 (~300 s)
#   bash benchmarks/gpu_h200_next.sh new_gpu_tests  # only the GPU tests written on CPU since the last GPU run (~60 s)
#   bash benchmarks/gpu_h200_next.sh flush_bias  # does the zeroing L2 flush bill its write-back to the kernel? (~60 s)
#   bash benchmarks/gpu_h200_next.sh marginals  # issue 15: 8B b8 joules per class by duplication (~5 runs, ~2-3 min)
#   bash benchmarks/gpu_h200_next.sh attn_configs  # every attention config vs cuDNN, paired (PIPELINE_QK; ~2-3 min)
#   FLUSH=read bash benchmarks/gpu_h200_next.sh decode_tune  # decode tuner (graph timing; FLUSH=write|read; ~60 s)
#   (gemm_tune takes FLUSH too)
# Every test has its own --timeout so one hang cannot eat the call; junit XML and logs go to $OUT.
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1 KERNELPROF_GIT_REVISION=${REV:-unknown}
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.sm,temperature.gpu --format=csv > "$OUT/gpu.txt" 2>&1
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv >> "$OUT/gpu.txt" 2>&1
# The benchmarks name their results after the card (gpu_slug): copy back the file this card wrote, not
# the H200 one the checkout already holds (12-07: llm-h100.json was left behind, llm-h200.json copied).
SLUG=$(python -c 'import torch; from kernelprof.outputs.benchfile import gpu_slug; print(gpu_slug(torch.cuda.get_device_name()))' 2>/dev/null || echo h200)
echo "slug $SLUG" >> "$OUT/gpu.txt"
files_a=$(ls tests/test_*.py | sort | awk '$0 < "tests/test_ladder.py"')
files_b=$(ls tests/test_*.py | sort | awk '$0 >= "tests/test_ladder.py"')
for step in "$@"; do
t0=$SECONDS
case "$step" in
  calib_smoke) timeout 200 python -m pytest -v -m gpu tests/test_calibration_gpu.py -k suite_counters \
             -p no:cacheprovider --timeout 180 -rfEs --tb=short > "$OUT/calib-smoke.log" 2>&1 ;;
  new_gpu_tests) timeout 300 python -m pytest -v -m gpu -p no:cacheprovider --timeout 120 -rfEs --tb=short \
             tests/test_decode_dispatch.py tests/test_kernels_decode_fused.py "tests/test_kernels_gpu.py::test_flash_attention" \
             "tests/test_llm_gpu.py::test_class_marginals_on_a_small_model_keep_the_tokens_and_cost_more_when_doubled" \
             "tests/test_kernels_gpu.py::test_flash_attention_every_config" \
             "tests/test_timing_gpu.py::test_read_flush_evicts_l2_as_the_zeroing_flush_does" \
             "tests/test_timing_gpu.py::test_tuner_graph_timing_matches_direct_when_gpu_bound_and_drops_host_launch_cost" \
             > "$OUT/new-gpu-tests.log" 2>&1 ;;
  fp8_tests) timeout ${FP8_TESTS_TIMEOUT_S:-300} python -m pytest -v -m gpu -p no:cacheprovider --timeout 150 -rfEs --tb=short \
             tests/test_fp8_linear_gpu.py "tests/test_ladder.py::test_tiny_ladder_on_gpu" \
             "tests/test_llm_gpu.py::test_the_ladders_graph_modes_capture_the_eager_references" \
             "tests/test_timing_gpu.py::test_read_flush_evicts_l2_as_the_zeroing_flush_does" > "$OUT/fp8-tests.log" 2>&1 ;;
  ladder_kp) timeout ${LADDER_KP_TIMEOUT_S:-340} python -m kernelprof ladder --model llama-3.1-8b --batch 8 --input-len 512 \
             --output-len 128 --repeats 1 \
             --rungs ${KP_RUNGS:-kp-eager,kp-cuda-graphs,kp-fused-pointwise,kp-triton,kp-fp8,kp-triton-max-batch} \
             --out "$OUT/ladder-kp-rungs-llama-3.1-8b-b8-$SLUG.jsonl" > "$OUT/ladder-kp.log" 2>&1 ;;
  flush_test) timeout 120 python -m pytest -v -m gpu -p no:cacheprovider --timeout 100 -rfEs --tb=short \
             "tests/test_timing_gpu.py::test_read_flush_evicts_l2_as_the_zeroing_flush_does" > "$OUT/flush-test.log" 2>&1 ;;
  calib) mkdir -p "$OUT/calib"; ct=${CALIB_TIMEOUT_S:-480}
         # DEADLINE_S: the whole call's budget; calib takes what the steps before it left (less 15 s to pack).
         [ -n "${DEADLINE_S:-}" ] && ct=$(( DEADLINE_S - SECONDS - 15 ))
         COLUMNS=220 timeout $ct python -m kernelprof calibrate --counters \
             --results-dir "$OUT/calib" > "$OUT/calib.log" 2>&1 ;;
  tests_a) timeout 560 python -m pytest -v -m gpu $files_a -p no:cacheprovider --timeout 200 -rfEs --tb=short \
             --durations=30 --junitxml="$OUT/junit-a.xml" > "$OUT/tests-a.log" 2>&1 ;;
  tests_b) timeout 560 python -m pytest -v -m gpu $files_b -p no:cacheprovider --timeout 200 -rfEs --tb=short \
             --durations=30 --junitxml="$OUT/junit-b.xml" > "$OUT/tests-b.log" 2>&1 ;;
  ladder)  timeout 570 python -m kernelprof ladder --model llama-3.1-8b --batch 8 --input-len 512 --output-len 128 \
             --repeats 2 --out "$OUT/ladder-llama-3.1-8b-b8-h200.jsonl" --results --plot "$OUT/ladder-h200.png" \
             > "$OUT/ladder.log" 2>&1
           cp benchmarks/results/ladder-$SLUG.json "$OUT/" 2>/dev/null ;;
  ladder_new) timeout ${LADDER_TIMEOUT_S:-300} python -m kernelprof ladder --model llama-3.1-8b --batch 8 --input-len 512 \
             --output-len 128 --repeats 1 --rungs hf-sdpa-static-compile,kp-triton-max-batch \
             --out "$OUT/ladder-new-rungs-llama-3.1-8b-b8-h200.jsonl" > "$OUT/ladder-new.log" 2>&1 ;;
  accuracy) timeout 560 python benchmarks/accuracy.py --no-zeus --merge --detail "$OUT/accuracy-detail.json" \
             > "$OUT/accuracy.log" 2>&1; cp benchmarks/results/accuracy-$SLUG.json "$OUT/" ;;
  classes) timeout 400 python -m kernelprof llm --model llama-3.1-8b --batch 8 --input-len 512 --output-len 128 \
             --mode optimized --kernel-slices --min-inrun-s 6 -o "$OUT/llm-8b-b8-kernels-$SLUG" > "$OUT/llm-classes.log" 2>&1
           timeout 120 python -m kernelprof report "$OUT"/llm-8b-b8-kernels-$SLUG-optimized.profile.json --by class \
             > "$OUT/llm-classes-report.txt" 2>&1
           rm -f "$OUT"/llm-8b-b8-kernels-$SLUG*.trace.json ;;  # ~400k slices: over $OUT's 16 MiB per file
  verdicts) timeout $(( ${VERDICTS_BUDGET_S:-450} + 110 )) python benchmarks/energy_verdicts.py --budget-s ${VERDICTS_BUDGET_S:-450} > "$OUT/verdicts.log" 2>&1
            cp benchmarks/results/energy-verdicts-$SLUG.json "$OUT/" 2>/dev/null ;;
  discipline) timeout 300 python benchmarks/counter_discipline.py --fixture "$OUT/" > "$OUT/discipline.log" 2>&1
              cp benchmarks/results/counter_discipline-$SLUG.json "$OUT/" 2>/dev/null ;;
  discipline_sweep) timeout 240 python benchmarks/counter_discipline.py --counter-interval-s 0.5,0.2,0.1 \
             --fixture "$OUT/" > "$OUT/discipline-sweep.log" 2>&1
              cp benchmarks/results/counter_discipline-$SLUG.json "$OUT/" 2>/dev/null ;;
  kattr) timeout 300 python benchmarks/kernel_attribution.py --burst-reference --save "$OUT/kattr-mix.json" \
           > "$OUT/kattr.log" 2>&1  # the mix's recording comes back, so the regression can be studied on CPU
         cp benchmarks/results/kernel-attribution-$SLUG.json "$OUT/" 2>/dev/null ;;
  kattr_nocap) timeout 240 python benchmarks/kernel_attribution.py --cases copy-1gib,fma-fp32,decode-b16-ctx8192 \
           --burst-reference --save "$OUT/kattr-nocap-mix.json" > "$OUT/kattr-nocap.log" 2>&1
         cp benchmarks/results/kernel-attribution-$SLUG.json "$OUT/kernel-attribution-nocap-$SLUG.json" 2>/dev/null ;;
  kernels_full) timeout ${KERNELS_TIMEOUT_S:-580} python benchmarks/kernels.py --energy > "$OUT/kernels-full.log" 2>&1
           cp benchmarks/results/kernels-$SLUG.json "$OUT/" 2>/dev/null ;;
  gemm_tune) mkdir -p "$OUT/tune"; timeout 200 python benchmarks/gemm_tune.py --out "$OUT/tune" --budget-s 150 \
               --flush "${FLUSH:-write}" > "$OUT/tune/gemm.log" 2>&1 ;;
  decode_tune) mkdir -p "$OUT/tune"; timeout 200 python benchmarks/decode_tune.py --out "$OUT/tune" --budget-s 150 \
                 --flush "${FLUSH:-write}" > "$OUT/tune/decode.log" 2>&1 ;;
  marginals) timeout 300 python -m kernelprof llm --model llama-3.1-8b --batch 8 --input-len 512 --output-len 128 \
             --class-marginals --min-inrun-s 4 -o "$OUT/llm-8b-b8-$SLUG" > "$OUT/marginals.log" 2>&1 ;;
  attn_configs) timeout 240 python benchmarks/attention_configs.py > "$OUT/attention-configs.log" 2>&1 ;;
  flush_bias) timeout 200 python benchmarks/flush_bias.py --out "$OUT" > "$OUT/flush-bias.log" 2>&1 ;;
  rebase) mkdir -p "$OUT/rebase"
          # Short benchmarks first, each capped so that one overrun cannot take the others' time.
          timeout 150 python benchmarks/power.py > "$OUT/rebase/power.log" 2>&1; echo "power rc=$?" >> "$OUT/steps.txt"
          timeout 170 python benchmarks/kernel_energy.py > "$OUT/rebase/kernel-energy.log" 2>&1; echo "kernel_energy rc=$?" >> "$OUT/steps.txt"
          timeout 80 python benchmarks/timing.py > "$OUT/rebase/timing.log" 2>&1; echo "timing rc=$?" >> "$OUT/steps.txt"
          timeout 170 python benchmarks/counters.py > "$OUT/rebase/counters.log" 2>&1; echo "counters rc=$?" >> "$OUT/steps.txt"
          cp benchmarks/results/{power,kernel-energy,timing,counters}-$SLUG.json "$OUT/rebase/" 2>/dev/null ;;
  power) timeout 170 python benchmarks/power.py > "$OUT/power.log" 2>&1; cp benchmarks/results/power-$SLUG.json "$OUT/" ;;
  llm) timeout ${LLM_TIMEOUT_S:-540} python benchmarks/llm.py --no-hf --min-inrun-s 6 > "$OUT/llm.log" 2>&1
       cp benchmarks/results/llm-$SLUG.json "$OUT/" 2>/dev/null ;;
  workload) timeout ${WORKLOAD_TIMEOUT_S:-540} python benchmarks/workload.py --trace azure-conv \
              --out "$OUT/workload-azure-conv.jsonl" > "$OUT/workload.log" 2>&1
            cp benchmarks/results/workload-$SLUG.json "$OUT/" 2>/dev/null ;;
  wl_first) W=${WL:-azure-conv}; mkdir -p "$OUT/ladder-$W"
            # Rung files from earlier calls on this kind of card (traces/ladder-$W-$SLUG/) resume here; else the
            # workload benchmark's optimized recording serves as the last rung.
            [ -d traces/ladder-$W-$SLUG ] && cp traces/ladder-$W-$SLUG/*.jsonl "$OUT/ladder-$W/"
            [ -f "$OUT/ladder-$W/optimized.jsonl" ] || { [ -f traces/workload-$W-llama-3.1-8b-$SLUG.jsonl ] && \
              cp traces/workload-$W-llama-3.1-8b-$SLUG.jsonl "$OUT/ladder-$W/optimized.jsonl"; }
            timeout ${WL_TIMEOUT_S:-420} python -m kernelprof ladder --workload $W --only first --out "$OUT/ladder-$W" --other-gpu \
              --results > "$OUT/ladder-$W.log" 2>&1
            cp benchmarks/results/ladder-$SLUG.json "$OUT/" 2>/dev/null ;;
  wl_last) W=${WL:-azure-conv}; mkdir -p "$OUT/ladder-$W"
           [ -d traces/ladder-$W-$SLUG ] && cp traces/ladder-$W-$SLUG/*.jsonl "$OUT/ladder-$W/"
           timeout ${WL_TIMEOUT_S:-420} python -m kernelprof ladder --workload $W --only last --out "$OUT/ladder-$W" --other-gpu \
             --results > "$OUT/ladder-$W-last.log" 2>&1
           cp benchmarks/results/ladder-$SLUG.json "$OUT/" 2>/dev/null ;;
  eager_rungs) timeout ${EAGER_TIMEOUT_S:-200} python -m kernelprof ladder --model llama-3.1-8b --batch 8 --input-len 512 \
             --output-len 128 --repeats 1 --rungs hf-eager,kp-eager \
             --out "$OUT/ladder-eager-rungs-llama-3.1-8b-b8-h200.jsonl" > "$OUT/ladder-eager.log" 2>&1 ;;
  *) echo "unknown step $step"; exit 2 ;;
esac
echo "$step rc=$? at $((SECONDS - t0)) s" >> "$OUT/steps.txt"
done
# $OUT brings back at most 8 files: pack everything but the two summaries into one archive.
(cd "$OUT" && find . -type f ! -name steps.txt ! -name gpu.txt ! -name bundle.tgz ! -name .list | sort > .list \
   && tar czf bundle.tgz -T .list && xargs rm -f < .list && rm -f .list && find . -mindepth 1 -type d -empty -delete)
