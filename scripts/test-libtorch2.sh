#!/usr/bin/env bash
# Builds the addon against a pip-installed torch 2.x (the LibTorch most users have) into build/torch2/
# and runs the addon's and library's tests against that build. `npm run test:libtorch2`; CI runs it
# after `npm test`.
#
# The torch venv is made once, in TORCH2_VENV (default ~/.cache/torchscript-node/torch-<version>): PyPI's
# Linux wheels of torch carry CUDA, so it is about 5 GB and takes 2-3 minutes to install. Later runs
# reuse it. TORCH2_VERSION picks the version (default below); TORCH_PYTHON=/path/to/python uses an
# existing torch instead.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${TORCH2_VERSION:-2.15.0}
if [ -z "${TORCH_PYTHON:-}" ]; then
  venv=${TORCH2_VENV:-$HOME/.cache/torchscript-node/torch-$version}
  if ! "$venv/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)" 2>/dev/null; then
    echo "test-libtorch2: installing torch $version from PyPI into $venv (about 5 GB, a few minutes)"
    python3 -m venv "$venv" || { echo "test-libtorch2: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
    for attempt in 1 2; do
      "$venv/bin/pip" install --quiet --disable-pip-version-check "torch==$version" && break
      [ "$attempt" = 2 ] && exit 1
      echo "test-libtorch2: pip failed, trying once more"
    done
  fi
  export TORCH_PYTHON=$venv/bin/python
fi

echo "test-libtorch2: $(node scripts/find-libtorch.mjs | head -n 2 | tr -s ' ' | tr '\n' ' ')"
npx --no-install cmake-js compile --out build/torch2 >build/torch2-build.log 2>&1 || {
  tail -n 40 build/torch2-build.log >&2
  exit 1
}
TORCH_NODE_ADDON=$PWD/build/torch2/Release/torch_node.node node node_modules/vitest/vitest.mjs run test/torch
