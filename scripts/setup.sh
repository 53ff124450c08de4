#!/usr/bin/env bash
# Create .venv and install steik with its test tools. Idempotent: a second run checks and exits.
# CPU machines get the CPU build of PyTorch (STEIK_TORCH, default 2.13.0). A GPU user installs the
# CUDA build of torch into .venv first (see README, "GPU"); this script then keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.steik-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==${STEIK_TORCH:-2.13.0}"
fi
.venv/bin/python -m pip install --quiet -e ".[dev]"
touch "$stamp"
echo "steik installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
