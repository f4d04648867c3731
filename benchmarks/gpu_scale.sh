#!/usr/bin/env bash
# Benchmark 6, the multi-process check: `dialogsum-lab train` under torchrun on every GPU of the machine
# (DDP for LoRA and full fine-tuning, FSDP for full fine-tuning), flan-t5-base's shape, nothing downloaded.
#   benchmarks/gpu_scale.sh      -> prints the table, writes benchmarks/results/gpu_scale.json (and $OUT/ if set)
# Wheels found in .whl/ (transformers, peft, datasets, ... as requirements.txt pins them) go to /tmp/site first.
set -euo pipefail
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
export DIALOGSUM_LAB_CACHE="${DIALOGSUM_LAB_CACHE:-$PWD/.gpu-data/cache}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
(cd benchmarks && timeout 470 python3 bench_scale.py)
if [ -n "${OUT:-}" ]; then cp benchmarks/results/gpu_scale.json "$OUT/"; fi
