// A model's identity by its content: SHA-256 over the names and SHA-256s of the files it runs from (model
// files, class mapping, vocabulary, model.json). Instances that serve the same files agree on it, so they can
// share cached answers; any change to any file (new weights, a renamed class) gives another one, so that a new
// model never meets an old model's answer. Files are read as streams, hashed on the way (hundreds of MB for the
// workshop's model: about a second, beside the load). The same pass checks each file against the SHA-256 and
// size model.json recorded at export (model-folder.ts's checksums): a file changed or corrupted since then
// (a flipped block in the weights loads fine and answers wrongly) fails the load.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';

import { type FileChecksum, ModelFolderError } from './model-folder.js';

async function fileDigest(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Rejects (ERR_MODEL_CHECKSUM, naming the file) when `found` differs from what model.json recorded. */
function checkDigest(file: string, found: { sha256: string; bytes: number }, expected: FileChecksum | undefined): void {
  if (!expected) return;
  if ((expected.bytes !== undefined && found.bytes !== expected.bytes) || found.sha256 !== expected.sha256) {
    throw new ModelFolderError(
      `Changed or corrupt ${file}: it does not match model.json's SHA-256 for it (the file changed or was corrupted since the export): ` +
        `model.json records ${expected.sha256}${expected.bytes !== undefined ? ` (${expected.bytes} bytes)` : ''}, ` +
        `the file has ${found.sha256} (${found.bytes} bytes)`,
      'ERR_MODEL_CHECKSUM',
      file,
    );
  }
}

/**
 * The content id of `files` (absolute paths; their base names and contents count, not their folder). With
 * `checksums` (absolute path -> model.json's record), rejects with ERR_MODEL_CHECKSUM when a file differs.
 */
export async function modelContentId(files: readonly string[], checksums?: ReadonlyMap<string, FileChecksum>): Promise<string> {
  const digests = await Promise.all(
    files.map(async (f) => {
      const found = await fileDigest(f);
      checkDigest(f, found, checksums?.get(f));
      return `${path.basename(f)}:${found.sha256}`;
    }),
  );
  return createHash('sha256').update(digests.sort().join('\n')).digest('hex');
}
