// A model's identity by its content: SHA-256 over the names and SHA-256s of the files it runs from (model
// files, class mapping, vocabulary, model.json). Instances that serve the same files agree on it, so they can
// share cached answers; any change to any file (new weights, a renamed class) gives another one, so that a new
// model never meets an old model's answer. Files are read as streams, hashed on the way (hundreds of MB for the
// workshop's model: about a second, beside the load).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';

async function fileDigest(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The content id of `files` (absolute paths; their base names and contents count, not their folder). */
export async function modelContentId(files: readonly string[]): Promise<string> {
  const digests = await Promise.all(files.map(async (f) => `${path.basename(f)}:${await fileDigest(f)}`));
  return createHash('sha256').update(digests.sort().join('\n')).digest('hex');
}
