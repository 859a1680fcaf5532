// Reading a model folder: what is required, what model.json may change, and messages naming the file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ModelFolderError, parseClassMapping, readModelFolder, WORKSHOP_PREPROCESSING } from '../../src/classifier/model-folder.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'model-folder-'));
  writeFileSync(path.join(dir, 'best_model.pth'), 'not read here');
  writeFileSync(path.join(dir, 'class_mapping.json'), JSON.stringify({ steak: 1, pizza: 0, sushi: 2 }));
  writeFileSync(path.join(dir, 'vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\n');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function folderError(files = {}): Promise<ModelFolderError> {
  const err = await readModelFolder(dir, files).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ModelFolderError);
  return err as ModelFolderError;
}

describe('readModelFolder', () => {
  it('reads the class names in index order and the workshop defaults without model.json', async () => {
    const folder = await readModelFolder(dir);
    expect(folder.classNames).toEqual(['pizza', 'steak', 'sushi']);
    expect(folder.modelFile).toBe(path.join(dir, 'best_model.pth'));
    expect(folder.metadataFile).toBeUndefined();
    expect(folder.preprocessing).toEqual({ resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(folder.maxLength).toBe(128);
  });

  it.each([
    ['best_model.pth', 'the model (TorchScript)'],
    ['class_mapping.json', 'the class mapping'],
    ['vocab.txt', 'the vocabulary'],
  ])('names a missing %s', async (file, what) => {
    rmSync(path.join(dir, file));
    const err = await folderError();
    expect(err.code).toBe('ERR_MODEL_FILE_MISSING');
    expect(err.file).toBe(path.join(dir, file));
    const parts = file === 'best_model.pth' ? ' (nor the two parts text_encoder.pth + head.pth)' : '';
    expect(err.message).toBe(`Missing ${what}: ${path.join(dir, file)} does not exist or is not a file${parts}`);
  });

  describe('the files the model runs from', () => {
    const touch = (...names: string[]) => {
      for (const n of names) writeFileSync(path.join(dir, n), 'not read here');
    };

    it('the whole model when the folder has no parts', async () => {
      const folder = await readModelFolder(dir);
      expect(folder.backend).toBe('torch');
      expect(folder.layout).toEqual({ kind: 'whole', modelFile: path.join(dir, 'best_model.pth') });
    });

    it('the two parts before the whole model; the whole model when both parts are not there or when told', async () => {
      touch('text_encoder.pth', 'head.pth');
      expect((await readModelFolder(dir)).layout).toEqual({
        kind: 'parts',
        textEncoderFile: path.join(dir, 'text_encoder.pth'),
        headFile: path.join(dir, 'head.pth'),
      });
      expect((await readModelFolder(dir, { useParts: false })).layout.kind).toBe('whole');
      expect((await readModelFolder(dir, { modelFile: 'best_model.pth' })).layout.kind).toBe('parts');
      expect(await readModelFolder(dir, { modelFile: path.join(dir, 'elsewhere.pth') }).catch((e: Error) => e.message)).toContain('elsewhere.pth');
      rmSync(path.join(dir, 'head.pth'));
      expect((await readModelFolder(dir)).layout.kind).toBe('whole');
    });

    it('backend auto: ONNX Runtime parts, LibTorch parts, ONNX Runtime whole, LibTorch whole, in that order', async () => {
      const pick = async () => {
        const f = await readModelFolder(dir, { backend: 'auto' });
        return `${f.backend} ${f.layout.kind}`;
      };
      expect(await pick()).toBe('torch whole');
      touch('best_model.onnx');
      expect(await pick()).toBe('onnx whole');
      touch('text_encoder.pth', 'head.pth');
      expect(await pick()).toBe('torch parts');
      touch('text_encoder.onnx', 'head.onnx');
      expect(await pick()).toBe('onnx parts');
      // a CUDA device is wanted: LibTorch whatever the folder holds
      const cuda = await readModelFolder(dir, { backend: 'auto', preferTorch: true });
      expect(`${cuda.backend} ${cuda.layout.kind}`).toBe('torch parts');
    });

    it('names what it looked for when nothing can run', async () => {
      rmSync(path.join(dir, 'best_model.pth'));
      const err = await folderError({ backend: 'auto' });
      expect(err.message).toBe(
        `Missing the model: ${path.join(dir, 'best_model.pth')} does not exist or is not a file ` +
          '(nor the two parts text_encoder.onnx + head.onnx or text_encoder.pth + head.pth)',
      );
    });
  });

  it('takes files from elsewhere when named', async () => {
    const other = path.join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ a: 0, b: 1 }));
    const folder = await readModelFolder(dir, { classMappingFile: other });
    expect(folder.classNames).toEqual(['a', 'b']);
  });

  it('uses model.json for preprocessing and max_length, and checks its classes against the mapping', async () => {
    const metadata = { preprocessing: { resize: 160, crop: 128, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, max_length: 32 };
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ ...metadata, classes: ['pizza', 'steak', 'sushi'] }));
    const folder = await readModelFolder(dir);
    expect(folder.metadataFile).toBe(path.join(dir, 'model.json'));
    expect(folder.preprocessing).toEqual(metadata.preprocessing);
    expect(folder.maxLength).toBe(32);

    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ classes: ['pizza', 'sushi', 'steak'] }));
    const err = await folderError();
    expect(err.file).toBe(path.join(dir, 'class_mapping.json'));
    expect(err.message).toContain('belongs to another model');
  });

  it('refuses a model.json with unusable preprocessing', async () => {
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ preprocessing: { resize: 100, crop: 224, mean: [0, 0, 0], std: [1, 1, 1] } }));
    expect((await folderError()).message).toContain('preprocessing.crop is larger than resize');
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ preprocessing: { resize: 256, crop: 224, mean: [0, 0], std: [1, 1, 1] } }));
    expect((await folderError()).message).toContain('mean and std of three numbers');
    writeFileSync(path.join(dir, 'model.json'), '{');
    expect((await folderError()).message).toMatch(/model\.json: it is not valid JSON/);
  });

  it("model.json's files: the SHA-256 and size of each file the model runs from, the folder's own only", async () => {
    const hash = (c: string) => c.repeat(64);
    writeFileSync(path.join(dir, 'text_encoder.pth'), 'not read here');
    writeFileSync(path.join(dir, 'head.pth'), 'not read here');
    const files = {
      'head.pth': { sha256: hash('A'), bytes: 13 },
      'text_encoder.pth': { sha256: hash('b') },
      'best_model.pth': { sha256: hash('c'), bytes: 13 },
      'class_mapping.json': { sha256: hash('d'), bytes: 1 },
      'vocab.txt': { bytes: 4 },
      'other.bin': { sha256: hash('e') },
    };
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ files }));
    const folder = await readModelFolder(dir);
    expect(Object.fromEntries(folder.checksums ?? [])).toEqual({
      [path.join(dir, 'head.pth')]: { sha256: hash('a'), bytes: 13 },
      [path.join(dir, 'text_encoder.pth')]: { sha256: hash('b'), bytes: undefined },
      [path.join(dir, 'class_mapping.json')]: { sha256: hash('d'), bytes: 1 },
    });
    // a class mapping from elsewhere is not the file model.json hashed, even by the same name
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'model-folder-elsewhere-'));
    try {
      writeFileSync(path.join(elsewhere, 'class_mapping.json'), JSON.stringify({ pizza: 0, steak: 1, sushi: 2 }));
      const other = await readModelFolder(dir, { classMappingFile: path.join(elsewhere, 'class_mapping.json') });
      expect(other.checksums?.has(path.join(elsewhere, 'class_mapping.json'))).toBe(false);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
    // without model.json: nothing to check
    rmSync(path.join(dir, 'model.json'));
    expect((await readModelFolder(dir)).checksums?.size).toBe(0);
  });

  it.each([
    [{ files: [] }, 'files must be an object'],
    [{ files: { 'head.pth': 'abc' } }, 'files["head.pth"] must be an object'],
    [{ files: { 'head.pth': { sha256: 'SECRET' } } }, 'files["head.pth"].sha256 must be 64 hexadecimal digits, not a string'],
    [{ files: { 'head.pth': { sha256: 'a'.repeat(64), bytes: -1 } } }, 'files["head.pth"].bytes must be a whole number of bytes, not -1'],
    [[], 'expected a JSON object'],
    [null, 'expected a JSON object'],
    [{ max_length: 'SECRET' }, 'max_length must be an integer of at least 2, not a string'],
  ])('refuses model.json %j', async (metadata, message) => {
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify(metadata));
    const err = await folderError();
    expect(err.file).toBe(path.join(dir, 'model.json'));
    expect(err.message).toContain(message);
    expect(err.message).not.toContain('SECRET');
  });

  describe('precision: the int8 variant (model.json variants.int8)', () => {
    const touch = (...names: string[]) => {
      for (const n of names) writeFileSync(path.join(dir, n), 'not read here');
    };
    const hash = (c: string) => c.repeat(64);
    const int8Files = { 'text_encoder.int8.onnx': { sha256: hash('1'), bytes: 13 }, 'head.int8.onnx': { sha256: hash('2'), bytes: 13 } };
    const variant = (over: Record<string, unknown> = {}) => ({
      parts: { text_encoder: 'text_encoder.int8.onnx', head: 'head.int8.onnx' },
      files: int8Files,
      passed: true,
      threshold: { min_top1_agreement: 0.99 },
      worst_top1_agreement: 1.0,
      timing: { ms: { head: { fp32: 20.75, int8: 14.69 }, text_encoder: { fp32: 1.25, int8: 1.28 } } },
      command: 'scripts/export_model.py --from-folder models --precision int8 --calibration cal --validation val',
      ...over,
    });
    const writeMetadata = (int8: unknown) =>
      writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ files: int8Files, ...(int8 === undefined ? {} : { variants: { int8 } }) }));
    const int8Layout = () => ({ kind: 'parts', textEncoderFile: path.join(dir, 'text_encoder.int8.onnx'), headFile: path.join(dir, 'head.int8.onnx') });
    const fresh = () => `.venv/bin/python scripts/export_model.py --from-folder ${dir} --precision int8 --calibration <photos> --validation <other photos>`;

    beforeEach(() => touch('text_encoder.onnx', 'head.onnx', 'text_encoder.int8.onnx', 'head.int8.onnx'));

    it('fp32 by default: the export as it is, whatever variant the folder has', async () => {
      writeMetadata(variant());
      for (const options of [{}, { backend: 'auto' as const }, { precision: 'fp32' as const, backend: 'onnx' as const }]) {
        const folder = await readModelFolder(dir, options);
        expect(folder.precision).toBe('fp32');
        expect(folder.layout.kind === 'parts' && folder.layout.headFile).not.toContain('int8');
      }
    });

    it("int8: the variant's two ONNX parts, checked against model.json's SHA-256, with ONNX Runtime even where LibTorch was preferred", async () => {
      writeMetadata(variant());
      for (const backend of ['auto', 'onnx'] as const) {
        const folder = await readModelFolder(dir, { precision: 'int8', backend, preferTorch: true });
        expect(folder).toMatchObject({ precision: 'int8', backend: 'onnx', layout: int8Layout(), backendFile: path.join(dir, 'head.int8.onnx') });
        expect(Object.fromEntries(folder.checksums ?? [])).toEqual({
          [path.join(dir, 'text_encoder.int8.onnx')]: int8Files['text_encoder.int8.onnx'],
          [path.join(dir, 'head.int8.onnx')]: int8Files['head.int8.onnx'],
        });
      }
      // the names model.json gives
      touch('te.q.onnx', 'h.q.onnx');
      writeMetadata(variant({ parts: { text_encoder: 'te.q.onnx', head: 'h.q.onnx' } }));
      expect((await readModelFolder(dir, { precision: 'int8' })).layout).toEqual({
        kind: 'parts',
        textEncoderFile: path.join(dir, 'te.q.onnx'),
        headFile: path.join(dir, 'h.q.onnx'),
      });
      // never a file outside the folder
      writeMetadata(variant({ parts: { text_encoder: '../SECRET.onnx', head: 'h.q.onnx' } }));
      const err = await folderError({ precision: 'int8' });
      expect(err.message).toContain('variants.int8.parts.text_encoder must be a file name in the folder, not a string');
      expect(err.message).not.toContain('SECRET');
    });

    it('int8 without the variant: an error naming the files looked for and the export command', async () => {
      rmSync(path.join(dir, 'text_encoder.int8.onnx'));
      rmSync(path.join(dir, 'head.int8.onnx'));
      const missing = `${path.join(dir, 'text_encoder.int8.onnx')} and ${path.join(dir, 'head.int8.onnx')} do not exist`;
      let err = await folderError({ precision: 'int8' });
      expect(err.code).toBe('ERR_MODEL_FILE_MISSING');
      expect(err.file).toBe(path.join(dir, 'text_encoder.int8.onnx'));
      expect(err.message).toBe(
        `Missing the int8 variant of ${dir}: there is no ${path.join(dir, 'model.json')} to record it and ${missing}; make it with: ${fresh()}; or serve fp32 (PRECISION=fp32)`,
      );
      writeMetadata(undefined);
      err = await folderError({ precision: 'int8' });
      expect(err.message).toBe(
        `Missing the int8 variant of ${dir}: ${path.join(dir, 'model.json')} records none (no variants.int8) and ${missing}; make it with: ${fresh()}; or serve fp32 (PRECISION=fp32)`,
      );
      // recorded, but a file is not there: the recorded command
      touch('text_encoder.int8.onnx');
      writeMetadata(variant());
      err = await folderError({ precision: 'int8' });
      expect(err.code).toBe('ERR_MODEL_FILE_MISSING');
      expect(err.file).toBe(path.join(dir, 'head.int8.onnx'));
      expect(err.message).toBe(
        `Missing the int8 variant's files: ${path.join(dir, 'head.int8.onnx')} does not exist (model.json's variants.int8 names text_encoder.int8.onnx + head.int8.onnx); ` +
          'make it with: .venv/bin/python scripts/export_model.py --from-folder models --precision int8 --calibration cal --validation val; or serve fp32 (PRECISION=fp32)',
      );
      // files there but never measured
      touch('head.int8.onnx');
      writeMetadata(undefined);
      err = await folderError({ precision: 'int8' });
      expect(err.code).toBe('ERR_MODEL_VARIANT');
      expect(err.message).toContain('(text_encoder.int8.onnx + head.int8.onnx are there, but their agreement with fp32 was never measured)');
    });

    it("int8 refuses a variant that did not pass the exporter's agreement check; auto skips it", async () => {
      writeMetadata(variant({ passed: false, worst_top1_agreement: 0.9733 }));
      const err = await folderError({ precision: 'int8' });
      expect(err.code).toBe('ERR_MODEL_VARIANT');
      expect(err.file).toBe(path.join(dir, 'model.json'));
      expect(err.message).toContain(
        `The int8 variant of ${dir} did not pass the exporter's check: its top-1 agreement with fp32 (0.9733 for its worst text) is under the threshold 0.99`,
      );
      expect(err.message).toContain('serve fp32 (PRECISION=fp32)');
      expect((await readModelFolder(dir, { precision: 'auto', backend: 'auto' })).precision).toBe('fp32');
      writeMetadata(variant({ passed: 'yes' }));
      expect((await folderError({ precision: 'int8' })).message).toContain('variants.int8.passed must be true or false, not a string');
    });

    it('int8 refuses LibTorch and a whole model named elsewhere', async () => {
      writeMetadata(variant());
      let err = await folderError({ precision: 'int8', backend: 'torch' });
      expect(err.code).toBe('ERR_MODEL_VARIANT');
      expect(err.message).toContain('runs on ONNX Runtime, not LibTorch: use BACKEND=onnx or auto, or PRECISION=fp32');
      for (const files of [{ onnxFile: path.join(dir, 'elsewhere.onnx') }, { modelFile: '/x/best_model.pth' }, { useParts: false }]) {
        err = await folderError({ precision: 'int8', ...files });
        expect(err.message).toContain('not a whole model: leave MODEL_PATH and ONNX_MODEL_PATH unset to run it, or use PRECISION=fp32');
      }
    });

    it("auto: int8 where it passed, ONNX Runtime's parts run, and model.json's timing says it is faster; fp32 otherwise", async () => {
      const pick = async (options: Parameters<typeof readModelFolder>[1] = {}) => {
        const f = await readModelFolder(dir, { backend: 'auto', precision: 'auto', ...options });
        return `${f.precision} ${f.backend} ${f.layout.kind}`;
      };
      writeMetadata(variant());
      expect(await pick()).toBe('int8 onnx parts');
      expect(await pick({ backend: 'onnx' })).toBe('int8 onnx parts');
      // LibTorch (asked for, or preferred for CUDA), or the whole model: fp32
      expect(await pick({ backend: 'torch' })).toBe('fp32 torch whole');
      expect(await pick({ preferTorch: true })).toBe('fp32 torch whole');
      expect(await pick({ useParts: false })).toBe('fp32 torch whole');
      // slower (the parts' medians added), or not timed: fp32
      writeMetadata(variant({ timing: { ms: { head: { fp32: 10, int8: 9 }, text_encoder: { fp32: 1, int8: 3 } } } }));
      expect(await pick()).toBe('fp32 onnx parts');
      writeMetadata(variant({ timing: undefined }));
      expect(await pick()).toBe('fp32 onnx parts');
      // none recorded, or its files not there: fp32, never an error
      writeMetadata(undefined);
      expect(await pick()).toBe('fp32 onnx parts');
      writeMetadata(variant());
      rmSync(path.join(dir, 'head.int8.onnx'));
      expect(await pick()).toBe('fp32 onnx parts');
    });
  });

  it('keeps the workshop defaults object unchanged', () => {
    expect(Object.isFrozen(WORKSHOP_PREPROCESSING)).toBe(true);
  });
});

describe('parseClassMapping', () => {
  it.each([
    ['[]', 'expected a JSON object of class name to index'],
    ['{}', 'it maps no classes'],
    ['{"a": 0, "b": 0}', "'a' and 'b' both have index 0"],
    ['{"a": 0, "b": 2}', "the index of 'b' is 2; expected an integer from 0 to 1"],
    ['{"a": "0"}', "the index of 'a' is a string"],
    ['{"a": 0.5}', "the index of 'a' is 0.5"],
    ['not json', 'it is not valid JSON'],
  ])('refuses %s', (text, message) => {
    expect(() => parseClassMapping(text, 'class_mapping.json')).toThrow(message);
  });

  it("never quotes the file's content (messages reach clients): where the JSON breaks, a value's kind", () => {
    const message = (text: string) => {
      try {
        parseClassMapping(text, 'class_mapping.json');
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(message('SECRET-TOKEN-abc')).toBe('Invalid class_mapping.json: it is not valid JSON');
    expect(message('{"a": 0,\n  SECRET}')).toMatch(/^Invalid class_mapping\.json: it is not valid JSON( \(at line 2, column 3\))?$/);
    expect(message('{"a": 0, "SECRET')).toMatch(/^Invalid class_mapping\.json: it is not valid JSON( \(.*\))?$/);
    expect(message('{"a": "SECRET-TOKEN-abc"}')).toBe("Invalid class_mapping.json: the index of 'a' is a string; expected an integer from 0 to 0");
    expect(message('{"a": {"SECRET": 1}}')).toContain("the index of 'a' is an object");
    for (const text of ['SECRET-TOKEN-abc', '{"a": 0,\n  SECRET}', '{"a": 0, "SECRET', '{"a": ["SECRET"]}']) expect(message(text)).not.toContain('SECRET');
  });

  it('orders by index', () => {
    expect(parseClassMapping('{"b": 1, "a": 0}', 'x')).toEqual(['a', 'b']);
  });
});
