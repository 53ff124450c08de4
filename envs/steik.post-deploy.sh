#!/usr/bin/env bash
# Runs once inside the freshly created conda env (Snakemake's post-deploy hook): install the
# steik package of this checkout without touching the pinned dependencies of envs/steik.yaml.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python -m pip install --no-deps --no-build-isolation "$root"
