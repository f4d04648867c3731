#!/usr/bin/env bash
# Create (or reuse) a virtual environment with everything dialogsum-lab needs.
#   scripts/setup.sh [VENV]      default VENV: .venv
# PyTorch: a CUDA build where an NVIDIA GPU answers, else the CPU-only wheel
# (a few hundred MB instead of several GB). TORCH_INDEX_URL overrides the choice.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet)
torch_version=$(sed -n 's/^torch==//p' requirements.txt)

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${pip[@]}" "torch==$torch_version" --index-url "$TORCH_INDEX_URL"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "${pip[@]}" "torch==$torch_version"                 # PyPI's Linux wheels are CUDA builds
  else
    # torch alone from PyTorch's CPU index; its dependencies come from PyPI with the rest below.
    "${pip[@]}" --no-deps --retries 1 "torch==$torch_version" --index-url https://download.pytorch.org/whl/cpu
  fi
fi
"${pip[@]}" -r requirements.txt                          # torch==X is satisfied by the X+cpu build
"${pip[@]}" --no-deps -e .
"$venv/bin/python" -c "import torch, transformers, peft; print(f'torch {torch.__version__} (CUDA: {torch.cuda.is_available()}), transformers {transformers.__version__}, peft {peft.__version__}')"
