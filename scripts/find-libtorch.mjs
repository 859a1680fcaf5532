#!/usr/bin/env node
// Finds the LibTorch that the addon builds against, for both builds (CMakeLists.txt and binding.gyp),
// so that they can never disagree. The order, first match wins:
//   1. LIBTORCH_DIR   an unpacked LibTorch, or any prefix holding its include/ and lib/ (or its CMake config)
//   2. TORCH_PYTHON   a Python interpreter whose `torch` package carries LibTorch (pip's torch 2.x)
//   3. the system's   Debian's libtorch-dev (/usr/include/torch, /usr/lib/<multiarch>/libtorch.so)
// We read headers and libraries directly instead of calling find_package(Torch): the CMake config of a
// CUDA build of torch insists on a full CUDA toolkit (nvcc), which a machine that only runs models lacks,
// and the addon needs none of it (it reaches CUDA through LibTorch's own runtime dispatch).
//
// Usage:
//   node scripts/find-libtorch.mjs                 human-readable summary
//   node scripts/find-libtorch.mjs --json          the same as JSON
//   node scripts/find-libtorch.mjs --cmake FILE    write a CMake include file with TORCH_NODE_* variables
//   node scripts/find-libtorch.mjs --gyp KEY       one list for binding.gyp: include_dirs | cflags_cc | libraries | defines | ldflags
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** No LibTorch where the search looked; `message` says where (one line). */
export class LibTorchNotFound extends Error {}

/** This repository's checkout (with scripts/setup.sh and `npm run build:addon`), or an installed package (neither). */
export const IN_CHECKOUT = existsSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'setup.sh'));

/**
 * How to get LibTorch (and the build tools), in commands that exist where the message is read: in the checkout
 * its own scripts, in an installed package `npm rebuild torchscript-node`. `missing` names what is absent:
 * 'LibTorch', 'cmake', 'a C++ compiler'.
 */
export function installAdvice(missing = ['LibTorch'], checkout = IN_CHECKOUT, env = process.env) {
  const needsTorch = missing.includes('LibTorch');
  const tools = [missing.includes('cmake') && 'cmake', missing.includes('a C++ compiler') && 'g++'].filter(Boolean);
  const debs = [needsTorch && 'libtorch-dev', ...tools].filter(Boolean).join(' ');
  const rebuild = checkout ? 'npm run build:addon' : 'npm rebuild torchscript-node';
  if (checkout && needsTorch) {
    return (
      "run scripts/setup.sh (it installs Debian's libtorch-dev), or point LIBTORCH_DIR at an unpacked LibTorch " +
      `or TORCH_PYTHON at a Python with pip's torch and run \`${rebuild}\`${tools.length ? ` (${tools.join(' and ')} needed too)` : ''}`
    );
  }
  // A LIBTORCH_DIR or TORCH_PYTHON that names no LibTorch is searched first again by the rebuild: say to unset it.
  const overrides = needsTorch ? ['LIBTORCH_DIR', 'TORCH_PYTHON'].filter((v) => env[v]) : [];
  const unset = (vars) => (vars.length ? ` (with ${vars.join(' and ')} unset)` : '');
  const apt = `\`apt-get install ${debs}\` (Debian/Ubuntu) then \`${rebuild}\`${unset(overrides)}`;
  if (!needsTorch) return apt;
  const withTools = tools.length ? ` (with ${tools.join(' and ')})` : '';
  const pip = `\`TORCH_PYTHON=/path/to/that/python ${rebuild}\`${unset(overrides.filter((v) => v === 'LIBTORCH_DIR'))}`;
  return `${apt}, or \`pip install torch\`${withTools} then ${pip}`;
}

const API_INCLUDE = path.join('torch', 'csrc', 'api', 'include');

/** A LibTorch laid out as prefix/include + prefix/lib (unpacked zip, pip's torch/, a custom prefix). */
function fromPrefix(prefix, source) {
  const includeDir = path.join(prefix, 'include');
  const libDir = path.join(prefix, 'lib');
  if (!existsSync(path.join(includeDir, API_INCLUDE, 'torch', 'torch.h'))) return null;
  if (!existsSync(path.join(libDir, 'libtorch_cpu.so'))) return null;
  return describe({ source, prefix, includeDir, libDir });
}

function fromLibtorchDir(dir) {
  if (!existsSync(dir)) throw new LibTorchNotFound(`LIBTORCH_DIR=${dir} does not exist.`);
  // Accept the prefix itself, or a CMake config folder inside it (share/cmake/Torch, lib/cmake/Torch).
  for (const candidate of [dir, path.resolve(dir, '..', '..', '..'), path.resolve(dir, '..', '..')]) {
    const found = fromPrefix(candidate, `LIBTORCH_DIR (${dir})`);
    if (found) return found;
  }
  throw new LibTorchNotFound(`LIBTORCH_DIR=${dir} holds no LibTorch: expected include/${API_INCLUDE}/torch/torch.h and lib/libtorch_cpu.so under it.`);
}

function fromPython(python) {
  let torchDir;
  try {
    // find_spec locates the package without importing it (importing a CUDA torch takes seconds).
    const locate = 'import importlib.util as u, os; s = u.find_spec("torch"); print(os.path.dirname(s.origin) if s else "")';
    torchDir = execFileSync(python, ['-c', locate], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const reason = String(err.stderr || err.message)
      .trim()
      .split('\n')
      .pop();
    throw new LibTorchNotFound(`TORCH_PYTHON=${python} cannot be run: ${reason}`);
  }
  if (!torchDir) throw new LibTorchNotFound(`TORCH_PYTHON=${python} has no torch package installed.`);
  const found = fromPrefix(torchDir, `TORCH_PYTHON (${python}, torch in ${torchDir})`);
  if (found) return found;
  // Debian's python3-torch ships no headers of its own: it uses the system's libtorch-dev.
  const system = fromSystem();
  if (system) return { ...system, source: `TORCH_PYTHON (${python}) via the system's LibTorch` };
  throw new LibTorchNotFound(`the torch of TORCH_PYTHON=${python} (${torchDir}) carries no LibTorch headers and libraries.`);
}

function fromSystem() {
  const includeDir = '/usr/include';
  if (!existsSync(path.join(includeDir, API_INCLUDE, 'torch', 'torch.h'))) return null;
  const libRoots = ['/usr/lib', ...readdirSync('/usr/lib').map((d) => path.join('/usr/lib', d))];
  const libDir = libRoots.find((d) => existsSync(path.join(d, 'libtorch_cpu.so')));
  if (!libDir) return null;
  return describe({ source: 'system (libtorch-dev)', prefix: '/usr', includeDir, libDir });
}

function describe({ source, prefix, includeDir, libDir }) {
  // torch 2.x moved the version macros from the API headers to torch/headeronly.
  const versionHeaders = [path.join(includeDir, API_INCLUDE, 'torch', 'version.h'), path.join(includeDir, 'torch', 'headeronly', 'version.h')];
  const version = versionHeaders.map((f) => /#define TORCH_VERSION\s*\\?\s*"([^"]+)"/.exec(readIfExists(f))?.[1]).find(Boolean) ?? 'unknown';
  // LibTorch 2.10 and later need C++20 (ATen.h says so with an #error); older ones build as C++17.
  const cxxStandard = readIfExists(path.join(includeDir, 'ATen', 'ATen.h')).includes('C++20 or later') ? 20 : 17;
  const cuda = existsSync(path.join(libDir, 'libtorch_cuda.so'));
  return {
    source,
    prefix,
    version,
    cuda,
    cxxStandard,
    includeDirs: [includeDir, path.join(includeDir, API_INCLUDE)],
    libDir,
    libraries: cuda ? ['torch', 'torch_cpu', 'torch_cuda', 'c10_cuda', 'c10'] : ['torch', 'torch_cpu', 'c10'],
    defines: [`_GLIBCXX_USE_CXX11_ABI=${cxx11Abi(prefix, libDir)}`, ...(cuda ? ['TORCH_NODE_WITH_CUDA=1'] : [])],
  };
}

/** LibTorch's C++ ABI: the addon must be compiled with the same _GLIBCXX_USE_CXX11_ABI or it fails to link. */
function cxx11Abi(prefix, libDir) {
  const configs = [path.join(prefix, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'), path.join(libDir, 'cmake', 'Torch', 'TorchConfig.cmake')];
  for (const config of configs) {
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readIfExists(config));
    if (m) return m[1];
  }
  return '1'; // every LibTorch since 2.7, and Debian's, use the new ABI
}

function readIfExists(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function findLibTorch(env = process.env) {
  if (env.LIBTORCH_DIR) return fromLibtorchDir(env.LIBTORCH_DIR);
  if (env.TORCH_PYTHON) return fromPython(env.TORCH_PYTHON);
  const system = fromSystem();
  if (system) return system;
  throw new LibTorchNotFound('LibTorch not found');
}

function cmakeList(values) {
  return `"${values.join(';')}"`;
}

function main(argv) {
  let lt;
  try {
    lt = findLibTorch();
  } catch (err) {
    if (!(err instanceof LibTorchNotFound)) throw err;
    process.stderr.write(`find-libtorch: ${err.message.replace(/\.$/, '')}. To get it: ${installAdvice()}.\n`);
    process.exit(1);
  }
  const [flag, arg] = argv;
  if (flag === '--json') {
    process.stdout.write(`${JSON.stringify(lt, null, 2)}\n`);
  } else if (flag === '--cmake') {
    writeFileSync(
      arg,
      [
        `# Written by scripts/find-libtorch.mjs; LibTorch from ${lt.source}`,
        `set(TORCH_NODE_LIBTORCH_VERSION "${lt.version}")`,
        `set(TORCH_NODE_LIBTORCH_CUDA ${lt.cuda ? 'ON' : 'OFF'})`,
        `set(TORCH_NODE_CXX_STANDARD ${lt.cxxStandard})`,
        `set(TORCH_NODE_INCLUDE_DIRS ${cmakeList(lt.includeDirs)})`,
        `set(TORCH_NODE_LIB_DIR "${lt.libDir}")`,
        `set(TORCH_NODE_LIBRARIES ${cmakeList(lt.libraries)})`,
        `set(TORCH_NODE_DEFINES ${cmakeList(lt.defines)})`,
        '',
      ].join('\n'),
    );
    process.stderr.write(`LibTorch ${lt.version}${lt.cuda ? ' (CUDA)' : ' (CPU)'} from ${lt.source}: ${lt.libDir}\n`);
  } else if (flag === '--gyp') {
    const lists = {
      include_dirs: lt.includeDirs,
      cflags_cc: [`-std=c++${lt.cxxStandard}`],
      defines: lt.defines,
      libraries: [`-L${lt.libDir}`, ...lt.libraries.map((l) => `-l${l}`)],
      // --no-as-needed: nothing in the addon names a CUDA symbol, so without it the linker drops
      // libtorch_cuda and torch::cuda::is_available() answers false.
      ldflags: [`-Wl,-rpath,${lt.libDir}`, ...(lt.cuda ? ['-Wl,--no-as-needed'] : [])],
    };
    if (!(arg in lists)) throw new Error(`--gyp expects one of ${Object.keys(lists).join(', ')}`);
    process.stdout.write(lists[arg].join(' '));
  } else {
    process.stdout.write(
      `LibTorch ${lt.version} (${lt.cuda ? 'with CUDA' : 'CPU only'}, C++${lt.cxxStandard})\n  from:      ${lt.source}\n` +
        `  headers:   ${lt.includeDirs.join(', ')}\n  libraries: ${lt.libDir}\n`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
