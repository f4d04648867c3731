#!/usr/bin/env bash
# The GPU checks: one H100/H200-class GPU, nothing downloaded, each under the device tool's 10 minutes a command.
#   benchmarks/gpu.sh         benchmark 5: hand-loop MFU and generation -> results/gpu.json
#   benchmarks/gpu.sh paths   issue 12: training through the package's Trainer (MFU, first steps apart), peak memory
#                             by method with and without activation checkpointing, 500-dialogue evaluation (also
#                             compiled)
#                             -> results/gpu_paths.json and results/memory-gpu.json
# Results are also copied to $OUT when it is set. Needs python3 with a CUDA build of torch. Wheels found in
# .whl/ (e.g. newer transformers/peft) are installed into /tmp/site first. Dialogues come from
# .gpu-data/*.jsonl if present (copy ../shared/dialogsum/dialogsum.dev.jsonl there; it is git-ignored, so name
# .gpu-data and .whl in the device tool's carry), else the sample data; the tiny model's tokenizer from
# $DIALOGSUM_LAB_CACHE (default .gpu-data/cache).
set -euo pipefail
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export DIALOGSUM_LAB_CACHE="${DIALOGSUM_LAB_CACHE:-$PWD/.gpu-data/cache}"
DEV=$(ls .gpu-data/*.jsonl 2>/dev/null | head -1 || true)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ "${1:-}" = "paths" ]; then
  (cd benchmarks && timeout 400 python3 bench_gpu_paths.py ${DEV:+--data "../$DEV"}) || echo "bench_gpu_paths: exit $?"
  (cd benchmarks && timeout 150 python3 bench_memory.py --device cuda --steps 3 --out results/memory-gpu.json) \
    || echo "bench_memory: exit $?"
  results="benchmarks/results/gpu_paths.json benchmarks/results/memory-gpu.json"
else
  (cd benchmarks && timeout 470 python3 bench_gpu.py)
  results=benchmarks/results/gpu.json
fi
if [ -n "${OUT:-}" ]; then for f in $results; do [ -f "$f" ] && cp "$f" "$OUT/"; done; fi
