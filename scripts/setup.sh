#!/usr/bin/env bash
# Sets up what a command needs, and does nothing slow when all is in place (about 2 s). Three levels, each
# adding to the one before (Debian 12; installing needs root, or sudo):
#   (none)      what serving needs, for `npm start`: LibTorch (libtorch-dev), OpenBLAS built with OpenMP,
#               selected as the system BLAS (the reference BLAS that is otherwise active is ~30x slower), cmake,
#               g++ and make; `npm ci` when package-lock.json changed (it also builds the addon); the addon
#               (cmake-js) and the TypeScript (tsc), incremental.
#   --tooling   the model tooling's Python, for `npm run bench*`, `soak`, `test:libtorch2` and scripts/*.py:
#               python3-torch and python3-torchvision (fixtures, the benchmark's Python baseline), python3-venv,
#               and .venv (Debian's python3 with its torch, plus scripts/requirements.txt from PyPI: onnxruntime,
#               ruff, clang-format, schemathesis, ...) when that file changed.
#   --tests     what the tests need, for `npm test` (its pretest): the tooling, python3-pytest, chromium (the
#               web page's browser test), redis-server, nginx and openssl (the fleet's tests start their own,
#               on free ports; nothing is configured here) and the shell linter (Debian's shellcheck).
# Options: --quiet (only say what it does), --no-system (no Debian packages and no BLAS choice: LibTorch comes
# from LIBTORCH_DIR or TORCH_PYTHON, or is known to be there, and so is the rest).
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=0
system=1
level=serve # serve < tooling < tests
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --no-system) system=0 ;;
    --tooling) [ "$level" = tests ] || level=tooling ;;
    --tests) level=tests ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done
say() { echo "setup: $*"; }
info() { [ "$quiet" = 1 ] || say "$@"; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "setup: needs root for: $*" >&2; exit 1
  fi
}

# --- 1. Debian packages -------------------------------------------------------------------------------
# Skipped when LibTorch comes from elsewhere (LIBTORCH_DIR / TORCH_PYTHON) and on non-Debian systems.
packages=(libtorch-dev libopenblas0-openmp cmake g++ make)
tooling_packages=(python3-torch python3-torchvision python3-venv)
test_packages=(python3-pytest chromium redis-server nginx openssl shellcheck)
case "$level" in
  tooling) packages+=("${tooling_packages[@]}") ;;
  tests) packages+=("${tooling_packages[@]}" "${test_packages[@]}") ;;
esac
if [ "$system" = 1 ] && [ -z "${LIBTORCH_DIR:-}${TORCH_PYTHON:-}" ] && command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} (about a minute)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi

  # --- 2. OpenBLAS (OpenMP) as the BLAS LibTorch uses -----------------------------------------------------
  # The pthread build of OpenBLAS fights LibTorch's OpenMP threads, and the reference BLAS is very slow.
  arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  for lib in libblas.so.3 liblapack.so.3; do
    want="/usr/lib/$arch/openblas-openmp/$lib"
    if [ -e "$want" ] && [ "$(readlink -f "/etc/alternatives/$lib-$arch" 2>/dev/null)" != "$(readlink -f "$want")" ]; then
      say "selecting OpenBLAS (OpenMP) for $lib"
      as_root update-alternatives --quiet --set "$lib-$arch" "$want"
    fi
  done
fi

# --- 3. npm packages ----------------------------------------------------------------------------------
stamp=node_modules/.setup-lock-sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  say "installing npm packages (npm ci; builds the addon)"
  # onnxruntime-node's postinstall would download a CUDA provider (offline: fails the whole install);
  # its CPU binaries are in the package.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" >"$stamp"
fi

# --- 4. the model tooling's Python ------------------------------------------------------------------------
# --system-site-packages: Debian's torch 1.13 (the LibTorch the addon uses by default) exports models that
# this LibTorch can load. numpy stays Debian's (<2), which that torch was built against.
if [ "$level" != serve ]; then
  req_sum=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
  if [ ! -f .venv/.requirements-sha256 ] || [ "$(cat .venv/.requirements-sha256)" != "$req_sum" ]; then
    say "making .venv (Debian's python3 and torch, plus scripts/requirements.txt from PyPI)"
    /usr/bin/python3 -m venv --system-site-packages --clear .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
    echo "$req_sum" >.venv/.requirements-sha256
  fi
fi

# --- 5. builds (incremental: under a second each when nothing changed) ----------------------------------
info "building the addon (cmake-js)"
if ! out=$(npx --no-install cmake-js compile --out build/cmake 2>&1); then
  echo "$out" >&2
  echo "setup: building the addon failed (see above). LibTorch: $(node scripts/find-libtorch.mjs 2>&1 | head -n 1)" >&2
  exit 1
fi
info "building the TypeScript (tsc)"
npm run --silent build:ts
# Loading the addon also chooses LibTorch's BLAS kernel the first time on a machine (a few seconds; see
# src/torch/blas-kernel.ts), so that neither the service nor the tests pay for it later.
info "ready: $(node -e "import('./dist/index.js').then(m => { const r = m.runtimeInfo(); const b = r.blas; console.log('LibTorch ' + r.libtorchVersion + (r.cudaAvailable ? ', CUDA: ' + r.cudaDeviceName : ', CPU') + ', BLAS ' + (b.kernel ? b.library + ' ' + b.kernel + ' (' + b.source + ')' : b.library ?? 'unknown') + ', addon ' + r.addonPath) })")"
