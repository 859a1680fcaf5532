#!/usr/bin/env bash
# `npm run bench:bf16 [-- --model DIR] [-- --threads N]`: bf16 against fp32 on this CPU (bench/bf16_study.py),
# with the pip torch 2.x that `npm run test:libtorch2` installs (TORCH2_PYTHON names another python with torch).
set -euo pipefail
python=${TORCH2_PYTHON:-$HOME/.cache/torchscript-node/torch-${TORCH2_VERSION:-2.15.0}/bin/python}
if ! "$python" -c "import torch" 2>/dev/null; then
  echo "bench:bf16: no torch 2.x at $python: run npm run test:libtorch2 once (it installs it), or set TORCH2_PYTHON" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
exec "$python" -W ignore bench/bf16_study.py "$@"
