// A model folder as the workshop's users have one, and as scripts/export_model.py writes one:
//   best_model.pth       TorchScript: forward(image, input_ids, attention_mask) -> logits
//   best_model.onnx      the same model in ONNX
//   text_encoder.pth     the model in two parts: forward(input_ids, attention_mask) -> text features,
//   head.pth             and forward(image, text features) -> logits (a text's features are computed once)
//   text_encoder.onnx    the same two parts in ONNX
//   head.onnx
//   class_mapping.json   {"pizza": 0, "steak": 1, ...}                                        (required)
//   vocab.txt            the WordPiece vocabulary of the text encoder                         (required)
//   model.json           what the exporter knows: preprocessing, max_length, classes, files    (optional)
//                        (files: the SHA-256 and size of each file; a file used that differs is refused)
// One of the four ways to run the model must be there: the two parts or the whole model, for LibTorch or ONNX
// Runtime. Reading the folder picks the way (see chooseLayout), checks everything that can be checked without
// loading a model, and names the file at fault.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { DEFAULT_PREPROCESS_OPTIONS, type PreprocessOptions } from './preprocess.js';

/** The image preprocessing a model expects (model.json may say; the workshop's torchvision pipeline if not). */
export type Preprocessing = Omit<PreprocessOptions, 'maxPixels' | 'maxDecodeBytes'>;

const { maxPixels: _maxPixels, maxDecodeBytes: _maxDecodeBytes, ...workshop } = DEFAULT_PREPROCESS_OPTIONS;
export const WORKSHOP_PREPROCESSING: Readonly<Preprocessing> = Object.freeze(workshop);

export const WORKSHOP_MAX_LENGTH = 128;

/** How the model runs: whole, or as a text encoder (once per distinct text) and a head (once per photo). */
export type ModelLayout = { kind: 'whole'; modelFile: string } | { kind: 'parts'; textEncoderFile: string; headFile: string };

export interface ModelFolder {
  /** The folder, absolute. */
  dir: string;
  /** The backend the folder was read for: its model files are there. */
  backend: Backend;
  /** The files the backend loads. */
  layout: ModelLayout;
  /** The model file named in messages: the whole model, or the head of the two parts. */
  backendFile: string;
  /** The TorchScript model, absolute (with the ONNX backend it need not exist). */
  modelFile: string;
  /** The ONNX model, absolute (with the LibTorch backend it need not exist). */
  onnxFile: string;
  classMappingFile: string;
  vocabFile: string;
  /** model.json, when the folder has one. */
  metadataFile: string | undefined;
  /** Class names in index order: classNames[i] is the class of logit i. */
  classNames: string[];
  preprocessing: Preprocessing;
  /** Token sequence length of input_ids and attention_mask. */
  maxLength: number;
  /**
   * What model.json's `files` says of the files this folder's model runs from (absolute path -> SHA-256 and
   * size): the load checks each against it (model-id.ts). Only the folder's own files: one named from
   * elsewhere (MODEL_PATH, ...) is not the file the exporter hashed. Empty without model.json or hashes.
   */
  checksums?: ReadonlyMap<string, FileChecksum>;
}

/** A file as model.json's `files` records it. */
export interface FileChecksum {
  /** Lower-case hex. */
  sha256: string;
  bytes: number | undefined;
}

export type ModelFolderErrorCode = 'ERR_MODEL_FILE_MISSING' | 'ERR_MODEL_FILE_INVALID' | 'ERR_MODEL_CHECKSUM';

/** What is wrong with a model folder; `file` is the file at fault. */
export class ModelFolderError extends Error {
  override readonly name = 'ModelFolderError';

  constructor(
    message: string,
    readonly code: ModelFolderErrorCode,
    readonly file: string,
  ) {
    super(message);
  }
}

/** What runs the model: LibTorch (through the addon) or ONNX Runtime. */
export type Backend = 'torch' | 'onnx';

export interface ModelFolderFiles {
  /**
   * Default `torch`. `auto` picks the fastest way the folder allows (see chooseLayout): ONNX Runtime, unless
   * `preferTorch` (a CUDA device is wanted: ONNX Runtime's Node build runs on the CPU only).
   */
  backend?: Backend | 'auto';
  /** With backend `auto`: use LibTorch whatever the folder holds (default false). */
  preferTorch?: boolean;
  /** Default `<dir>/best_model.pth`. Given explicitly, the whole model is used, not the parts. */
  modelFile?: string;
  /** Default `<dir>/best_model.onnx`. Given explicitly, the whole model is used, not the parts. */
  onnxFile?: string;
  /** Default true: the two parts when the folder has them; false: the whole model always. */
  useParts?: boolean;
  /** Default `<dir>/class_mapping.json`. */
  classMappingFile?: string;
  /** Default `<dir>/vocab.txt`. */
  vocabFile?: string;
}

export async function readModelFolder(dir: string, files: ModelFolderFiles = {}): Promise<ModelFolder> {
  const root = path.resolve(dir);
  const modelFile = path.resolve(root, files.modelFile ?? 'best_model.pth');
  const onnxFile = path.resolve(root, files.onnxFile ?? 'best_model.onnx');
  const classMappingFile = path.resolve(root, files.classMappingFile ?? 'class_mapping.json');
  const vocabFile = path.resolve(root, files.vocabFile ?? 'vocab.txt');
  const { backend, layout } = await chooseLayout(root, { ...files, modelFile, onnxFile });
  const backendFile = layout.kind === 'whole' ? layout.modelFile : layout.headFile;
  for (const [file, what] of [
    [classMappingFile, 'the class mapping'],
    [vocabFile, 'the vocabulary'],
  ] as const) {
    await requireFile(file, what);
  }
  const classNames = parseClassMapping(await readFile(classMappingFile, 'utf8'), classMappingFile);

  const metadataPath = path.join(root, 'model.json');
  const metadataFile = (await isFile(metadataPath)) ? metadataPath : undefined;
  let preprocessing: Preprocessing = WORKSHOP_PREPROCESSING;
  let maxLength = WORKSHOP_MAX_LENGTH;
  const checksums = new Map<string, FileChecksum>();
  if (metadataFile) {
    const parsed = parseJson(await readFile(metadataFile, 'utf8'), metadataFile);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid(metadataFile, 'expected a JSON object');
    const metadata = parsed as Record<string, unknown>;
    preprocessing = parsePreprocessing(metadata.preprocessing, metadataFile) ?? preprocessing;
    if (metadata.max_length !== undefined) {
      if (!Number.isInteger(metadata.max_length) || (metadata.max_length as number) < 2) {
        throw invalid(metadataFile, `max_length must be an integer of at least 2, not ${describeValue(metadata.max_length)}`);
      }
      maxLength = metadata.max_length as number;
    }
    if (Array.isArray(metadata.classes) && metadata.classes.join('\n') !== classNames.join('\n')) {
      throw invalid(
        classMappingFile,
        `its classes differ from those the model was exported with (${metadataFile}): the class mapping belongs to another model`,
      );
    }
    const recorded = parseFileChecksums(metadata.files, metadataFile);
    for (const file of [...layoutFiles(layout), classMappingFile, vocabFile]) {
      const checksum = path.dirname(file) === root ? recorded.get(path.basename(file)) : undefined;
      if (checksum) checksums.set(file, checksum);
    }
  }
  return {
    dir: root,
    backend,
    layout,
    backendFile,
    modelFile,
    onnxFile,
    classMappingFile,
    vocabFile,
    metadataFile,
    classNames,
    preprocessing,
    maxLength,
    checksums,
  };
}

/**
 * model.json's `files` ({"head.pth": {"sha256": "...", "bytes": 123}, ...}, as scripts/export_model.py writes
 * it) by file name; entries without a sha256 are left out (nothing to check). Absent: none.
 */
function parseFileChecksums(value: unknown, file: string): Map<string, FileChecksum> {
  const checksums = new Map<string, FileChecksum>();
  if (value === undefined) return checksums;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(file, 'files must be an object of file name to {"sha256": ..., "bytes": ...}');
  }
  for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
    const { sha256, bytes } = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw invalid(file, `files["${name}"] must be an object like {"sha256": ..., "bytes": ...}`);
    }
    if (sha256 === undefined) continue;
    if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) {
      throw invalid(file, `files["${name}"].sha256 must be 64 hexadecimal digits, not ${describeValue(sha256)}`);
    }
    if (bytes !== undefined && (!Number.isSafeInteger(bytes) || (bytes as number) < 0)) {
      throw invalid(file, `files["${name}"].bytes must be a whole number of bytes, not ${describeValue(bytes)}`);
    }
    checksums.set(name, { sha256: sha256.toLowerCase(), bytes: bytes as number | undefined });
  }
  return checksums;
}

/**
 * The backend and the files to load. In order of preference (measured: bench/results), among the ways the
 * backend allows and the folder has:
 *   1. the two parts (text encoder + head): a text's features are computed once, each photo runs the head;
 *   2. the whole model.
 * And with backend `auto`: ONNX Runtime before LibTorch (on the CPUs measured, its kernels were the fastest or
 * level with LibTorch's best, and it needs no LibTorch in the process), unless `preferTorch`. An explicit
 * modelFile or onnxFile means that whole model. Rejects, naming the files looked for, when none is there.
 */
export async function chooseLayout(
  root: string,
  files: ModelFolderFiles & { modelFile: string; onnxFile: string },
): Promise<{ backend: Backend; layout: ModelLayout }> {
  const requested = files.backend ?? 'torch';
  const backends: Backend[] = requested === 'auto' ? (files.preferTorch ? ['torch'] : ['onnx', 'torch']) : [requested];
  const explicitWhole = files.modelFile !== path.resolve(root, 'best_model.pth') || files.onnxFile !== path.resolve(root, 'best_model.onnx');
  const useParts = files.useParts !== false && !explicitWhole;
  const candidates: { backend: Backend; layout: ModelLayout }[] = [];
  if (useParts) {
    for (const backend of backends) {
      const ext = backend === 'onnx' ? 'onnx' : 'pth';
      candidates.push({
        backend,
        layout: { kind: 'parts', textEncoderFile: path.join(root, `text_encoder.${ext}`), headFile: path.join(root, `head.${ext}`) },
      });
    }
  }
  for (const backend of backends) {
    candidates.push({ backend, layout: { kind: 'whole', modelFile: backend === 'onnx' ? files.onnxFile : files.modelFile } });
  }
  for (const candidate of candidates) {
    if ((await Promise.all(layoutFiles(candidate.layout).map(isFile))).every(Boolean)) return candidate;
  }
  // Nothing to run: name the whole model's file, as the workshop's users know it, and the parts looked for.
  const whole = candidates.at(-1)!.layout as { kind: 'whole'; modelFile: string };
  const what = backends.length > 1 ? 'the model' : backends[0] === 'onnx' ? 'the model (ONNX)' : 'the model (TorchScript)';
  const parts = candidates
    .filter((c) => c.layout.kind === 'parts')
    .map((c) =>
      layoutFiles(c.layout)
        .map((f) => path.basename(f))
        .join(' + '),
    );
  const orParts = parts.length > 0 ? ` (nor the two parts ${parts.join(' or ')})` : '';
  throw new ModelFolderError(`Missing ${what}: ${whole.modelFile} does not exist or is not a file${orParts}`, 'ERR_MODEL_FILE_MISSING', whole.modelFile);
}

/** The model files of a layout. */
export function layoutFiles(layout: ModelLayout): string[] {
  return layout.kind === 'whole' ? [layout.modelFile] : [layout.textEncoderFile, layout.headFile];
}

/** `{"pizza": 0, "steak": 1}` -> ['pizza', 'steak']; the indices must be 0..N-1, each once. */
export function parseClassMapping(text: string, file: string): string[] {
  const mapping = parseJson(text, file);
  if (typeof mapping !== 'object' || mapping === null || Array.isArray(mapping)) {
    throw invalid(file, 'expected a JSON object of class name to index, like {"pizza": 0, "burger": 1}');
  }
  const entries = Object.entries(mapping as Record<string, unknown>);
  if (entries.length === 0) throw invalid(file, 'it maps no classes');
  const names: string[] = new Array(entries.length);
  for (const [name, index] of entries) {
    if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= entries.length) {
      throw invalid(file, `the index of '${name}' is ${describeValue(index)}; expected an integer from 0 to ${entries.length - 1}`);
    }
    if (names[index as number] !== undefined) {
      throw invalid(file, `'${names[index as number]}' and '${name}' both have index ${String(index)}`);
    }
    names[index as number] = name;
  }
  return names;
}

function parsePreprocessing(value: unknown, file: string): Preprocessing | undefined {
  if (value === undefined) return undefined;
  const p = value as Partial<Record<keyof Preprocessing, unknown>>;
  const positive = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  const triple = (v: unknown, min: number) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > min);
  if (!positive(p.resize) || !positive(p.crop) || !triple(p.mean, -Infinity) || !triple(p.std, 0)) {
    throw invalid(file, 'preprocessing must have integer resize and crop, and mean and std of three numbers (std > 0)');
  }
  if ((p.crop as number) > (p.resize as number)) throw invalid(file, 'preprocessing.crop is larger than resize');
  return { resize: p.resize, crop: p.crop, mean: p.mean, std: p.std } as Preprocessing;
}

/**
 * JSON.parse, whose error names where the text stops being JSON and never what it holds: JSON.parse's own
 * message quotes the text (a file's first bytes, e.g. a secret behind a symlink), and these messages reach
 * clients (reload-failure.ts).
 */
function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(file, `it is not valid JSON${jsonErrorPlace(text, (err as Error).message)}`);
  }
}

/** ' (at line L, column C)' from the position in JSON.parse's message, ' (it ends too early)', or ''. */
function jsonErrorPlace(text: string, message: string): string {
  const at = /\bposition (\d+)/.exec(message);
  if (at) {
    const before = text.slice(0, Number(at[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    return ` (at line ${line}, column ${column})`;
  }
  if (/end of (JSON|data)/i.test(message)) return ' (it ends too early)';
  return '';
}

/**
 * A value read from a file, for a message: a number (finite, short) or a boolean or null as written; anything
 * else by its kind only, never its content (messages reach clients).
 */
function describeValue(value: unknown): string {
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean' || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return 'a string';
  return typeof value === 'object' ? 'an object' : String(typeof value);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function requireFile(file: string, what: string): Promise<void> {
  if (!(await isFile(file))) {
    throw new ModelFolderError(`Missing ${what}: ${file} does not exist or is not a file`, 'ERR_MODEL_FILE_MISSING', file);
  }
}

function invalid(file: string, reason: string): ModelFolderError {
  return new ModelFolderError(`Invalid ${file}: ${reason}`, 'ERR_MODEL_FILE_INVALID', file);
}
