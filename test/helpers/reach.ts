// The reach tests' fixtures (test/fixtures/make_models.py: make_reach): more dtypes, non-tensor arguments,
// ONNX files with named inputs and outputs. Listed under `reach` in expected.json.
import path from 'node:path';

import { FIXTURES, expected } from './fixtures.js';

export function reachPath(key: 'small_dtypes' | 'args' | 'list_args' | 'linear' | 'add_mul_onnx' | 'small_dtypes_onnx'): string {
  const files = (expected() as unknown as { reach?: Record<string, string> }).reach ?? {};
  const file = files[key];
  if (!file) throw new Error(`No reach fixture '${key}' in expected.json: make_models.py did not make it`);
  return path.join(FIXTURES, file);
}
