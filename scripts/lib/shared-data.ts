// Where the photos and files that tests and benchmarks may read, but the repository never holds, are.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * ../shared/data: photos that tests may read but the repository never holds (see its SOURCES.md);
 * TORCH_NODE_SHARED_DATA points elsewhere (or, set to a missing folder, checks that the tests skip cleanly).
 */
export const SHARED_DATA = path.resolve(REPO, process.env.TORCH_NODE_SHARED_DATA || path.join('..', 'shared', 'data'));
