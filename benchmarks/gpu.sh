#!/usr/bin/env bash
# Benchmark 5, the GPU check: one H100/H200-class GPU, nothing downloaded, well under 8 minutes.
#   benchmarks/gpu.sh            -> prints the tables, writes benchmarks/results/gpu.json (and $OUT/gpu.json if set)
# Needs python3 with a CUDA build of torch. Wheels found in .whl/ (e.g. newer transformers/peft) are
# installed into /tmp/site first. Dialogues come from .gpu-data/*.jsonl if present, else the sample data;
# the tiny model's tokenizer from $DIALOGSUM_LAB_CACHE (default .gpu-data/cache, built on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export DIALOGSUM_LAB_CACHE="${DIALOGSUM_LAB_CACHE:-$PWD/.gpu-data/cache}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
(cd benchmarks && timeout 470 python3 bench_gpu.py)
if [ -n "${OUT:-}" ]; then cp benchmarks/results/gpu.json "$OUT/"; fi
