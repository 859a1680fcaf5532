// The README's library example is the file examples/library.mjs, word for word, and it runs as written.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

describe('README', () => {
  it('shows examples/library.mjs exactly', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const block = /<!-- example:library -->\n```js\n([\s\S]*?)```/.exec(readme);
    expect(block, 'README.md has a ```js block after <!-- example:library -->').not.toBeNull();
    expect(block![1]).toBe(readFileSync(path.join(root, 'examples', 'library.mjs'), 'utf8'));
  });

  it('runs the library example as written', () => {
    const out = execFileSync(process.execPath, [path.join(root, 'examples', 'library.mjs')], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(out).toContain('forward(Tensor input) -> Tensor');
    expect(out).toMatch(/float32 \[ 1, 2 \] Float32Array\(2\) \[ -?\d/);
  });
});
