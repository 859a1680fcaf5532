#!/usr/bin/env bash
# Builds the addon against a CUDA PyTorch and runs the addon's tests on the GPU.
#
# It is made for a GPU machine that has python3 with a CUDA torch, CMake and a C++ compiler but no Node
# and no network (such as the H100 the project can borrow): Node and the npm packages travel with the
# checkout in the ignored folder .gpu/.
#
#   scripts/gpu-check.sh pack     here: put a compressed copy of this machine's node and of node_modules
#                                 into .gpu/ (about 35 MB)
#   scripts/gpu-check.sh run      there: unpack, build the addon with TORCH_PYTHON=python3 into
#                                 build/cuda/, run test/torch with TORCH_NODE_TEST_DEVICE=cuda, then
#                                 time the addon against Python torch on CUDA; logs go to $OUT (or .gpu/out)
#                                 (GPU_CHECK_DEVICE=cpu rehearses the whole run on a machine without a GPU)
#
# With the project's device tool: `gpu-check.sh pack`, then run `bash scripts/gpu-check.sh run` there
# with carry [".gpu"].
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
pack)
  mkdir -p .gpu
  echo "gpu-check: packing node $(node --version)"
  xz -T0 -6 -c "$(command -v node)" >.gpu/node.xz
  echo "gpu-check: packing node_modules (without the TypeScript compiler and node-gyp, not needed there)"
  tar -C . -cf - --exclude='node_modules/typescript' --exclude='node_modules/@typescript' \
    --exclude='node_modules/node-gyp' --exclude='node_modules/.cache' node_modules | xz -T0 -6 >.gpu/node_modules.tar.xz
  du -sh .gpu/*
  ;;
run)
  out=${OUT:-.gpu/out}
  mkdir -p "$out" /tmp/gpu-node/bin
  [ -x /tmp/gpu-node/bin/node ] || { xz -dc .gpu/node.xz >/tmp/gpu-node/bin/node && chmod +x /tmp/gpu-node/bin/node; }
  export PATH=/tmp/gpu-node/bin:$PATH
  [ -d node_modules ] || xz -dc .gpu/node_modules.tar.xz | tar -xf -
  export TORCH_PYTHON=${TORCH_PYTHON:-$(command -v python3)}
  export TORCH_NODE_TEST_PYTHON=$TORCH_PYTHON
  {
    echo "== machine"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    "$TORCH_PYTHON" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
    node scripts/find-libtorch.mjs
    echo "== build (cmake-js, build/cuda)"
    node node_modules/cmake-js/bin/cmake-js compile --out build/cuda
    export TORCH_NODE_ADDON=$PWD/build/cuda/Release/torch_node.node
    device=${GPU_CHECK_DEVICE:-cuda}
    echo "== tests on $device"
    TORCH_NODE_TEST_DEVICE=$device node node_modules/vitest/vitest.mjs run test/torch
    echo "== bench ($device)"
    node --expose-gc --import tsx bench/addon.bench.ts --device "$device" --python "$TORCH_PYTHON" --iters 100 --rss-forwards 2000
  } 2>&1 | tee "$out/gpu-check.log"
  ;;
*)
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
