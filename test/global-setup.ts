// vitest globalSetup: makes the fixture models with PyTorch (test/fixtures/make_models.py) into
// test/.fixtures/, only when the script changed since the last run or a fixture is missing: the script's
// sha256 is kept in test/.fixtures/.stamp. The models are tiny and made in about 2 s.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const testDir = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(testDir, 'fixtures', 'make_models.py');
const fixtures = path.join(testDir, '.fixtures');
const stampFile = path.join(fixtures, '.stamp');
/** Debian's PyTorch is installed for the system Python, not for a pyenv `python3` first on PATH. */
const python = process.env.TORCH_NODE_TEST_PYTHON || '/usr/bin/python3';

function upToDate(hash: string): boolean {
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8').trim() !== hash) return false;
  const expected = path.join(fixtures, 'expected.json');
  if (!existsSync(expected)) return false;
  const { models, files } = JSON.parse(readFileSync(expected, 'utf8')) as {
    models: Record<string, { file: string }>;
    files: Record<string, string>;
  };
  return [...Object.values(models).map((m) => m.file), ...Object.values(files)].every((f) => existsSync(path.join(fixtures, f)));
}

export function setup(): void {
  const hash = createHash('sha256').update(readFileSync(script)).digest('hex');
  if (upToDate(hash)) return;

  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop();
    throw new Error(
      `The test fixtures are made with PyTorch, but ${python} cannot import torch (${why}). ` +
        'Run scripts/setup.sh (it installs python3-torch), or point TORCH_NODE_TEST_PYTHON at a Python that has torch.',
    );
  }

  // Made into a folder of its own and then moved into place, the stamp last: a run that fails or is
  // killed leaves no stamp, so the next run makes everything again.
  mkdirSync(fixtures, { recursive: true });
  rmSync(stampFile, { force: true });
  const staging = path.join(fixtures, '.new');
  rmSync(staging, { recursive: true, force: true });
  const run = spawnSync(python, [script, staging], { encoding: 'utf8' });
  if (run.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`${python} ${path.relative(process.cwd(), script)} failed (exit ${run.status ?? run.signal}):\n` + `${run.stdout}${run.stderr}`);
  }
  for (const entry of readdirSync(fixtures)) {
    if (entry !== '.new') rmSync(path.join(fixtures, entry), { recursive: true, force: true });
  }
  for (const entry of readdirSync(staging)) renameSync(path.join(staging, entry), path.join(fixtures, entry));
  rmSync(staging, { recursive: true, force: true });
  writeFileSync(stampFile, `${hash}\n`);
  console.log(`test fixtures made with PyTorch ${probe.stdout.trim()} into ${path.relative(process.cwd(), fixtures)}/`);
}
