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
//   text_encoder.int8.onnx, head.int8.onnx
//                        the two ONNX parts in int8 (export_model.py --precision int8), described in
//                        model.json's variants.int8 (passed, agreement, timing): precision int8 or auto
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
  /** The precision of the model files: fp32 (the export's), or int8 (the variant's ONNX parts). */
  precision: Precision;
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

export type ModelFolderErrorCode = 'ERR_MODEL_FILE_MISSING' | 'ERR_MODEL_FILE_INVALID' | 'ERR_MODEL_CHECKSUM' | 'ERR_MODEL_VARIANT';

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

/**
 * The precision of the weights and the computation: fp32 (the export, the workshop's answers exactly) or int8
 * (the variant scripts/export_model.py --precision int8 makes: two ONNX parts, run by ONNX Runtime).
 */
export type Precision = 'fp32' | 'int8';

/** The files of the int8 variant when model.json does not name them. */
export const INT8_PARTS = Object.freeze({ textEncoder: 'text_encoder.int8.onnx', head: 'head.int8.onnx' });

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
  /**
   * Default `fp32`: the exported model as it is. `int8`: the folder's int8 variant (model.json's
   * variants.int8: two ONNX parts, ONNX Runtime only; it must have passed the exporter's agreement check).
   * `auto`: int8 when the variant passed, the backend and layout chosen for fp32 are ONNX Runtime's two parts
   * (never on CUDA: `preferTorch` picks LibTorch), and model.json's timing says int8 is faster; else fp32.
   */
  precision?: Precision | 'auto';
}

export async function readModelFolder(dir: string, files: ModelFolderFiles = {}): Promise<ModelFolder> {
  const root = path.resolve(dir);
  const modelFile = path.resolve(root, files.modelFile ?? 'best_model.pth');
  const onnxFile = path.resolve(root, files.onnxFile ?? 'best_model.onnx');
  const classMappingFile = path.resolve(root, files.classMappingFile ?? 'class_mapping.json');
  const vocabFile = path.resolve(root, files.vocabFile ?? 'vocab.txt');
  const requestedPrecision = files.precision ?? 'fp32';
  if (requestedPrecision === 'int8') checkInt8Options(root, { ...files, modelFile, onnxFile });
  // int8: ONNX Runtime's two parts, whatever the fp32 files (the variant's files are checked below).
  const chosen =
    requestedPrecision === 'int8'
      ? { backend: 'onnx' as const, layout: int8Layout(root, undefined) }
      : await chooseLayout(root, { ...files, modelFile, onnxFile });
  const backend = chosen.backend;
  let layout = chosen.layout;
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
  let precision: Precision = 'fp32';
  const checksums = new Map<string, FileChecksum>();
  let metadata: Record<string, unknown> = {};
  if (metadataFile) {
    const parsed = parseJson(await readFile(metadataFile, 'utf8'), metadataFile);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid(metadataFile, 'expected a JSON object');
    metadata = parsed as Record<string, unknown>;
  }
  if (requestedPrecision !== 'fp32') {
    const variant = parseInt8Variant(metadata.variants, metadataFile ?? metadataPath);
    if (requestedPrecision === 'int8') {
      layout = await requireInt8(root, variant, metadataFile, metadataPath);
      precision = 'int8';
    } else if (backend === 'onnx' && layout.kind === 'parts' && variant?.passed && variant.faster === true) {
      // auto: a variant that passed, measured faster, whose files are there (else fp32: auto never fails on it).
      const candidate = int8Layout(root, variant);
      if ((await Promise.all(layoutFiles(candidate).map(isFile))).every(Boolean)) {
        layout = candidate;
        precision = 'int8';
      }
    }
  }
  const backendFile = layout.kind === 'whole' ? layout.modelFile : layout.headFile;
  if (metadataFile) {
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
    precision,
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

/** model.json's variants.int8, as far as choosing and checking it goes. */
interface Int8Variant {
  /** File names in the folder. */
  textEncoder: string;
  head: string;
  /** Whether its top-1 agreement with fp32 reached the threshold (the exporter's check). */
  passed: boolean;
  /** The lowest top-1 agreement of a text, and the threshold it had to reach, when recorded. */
  worstAgreement: number | undefined;
  minAgreement: number | undefined;
  /** Whether the exporter's timing found it faster than fp32 (the two parts' medians added); undefined: not timed. */
  faster: boolean | undefined;
  /** The command that made it, as recorded. */
  command: string | undefined;
}

function parseInt8Variant(variants: unknown, file: string): Int8Variant | undefined {
  if (variants === undefined) return undefined;
  if (!isObject(variants)) throw invalid(file, 'variants must be an object of precision to its description');
  const v = variants.int8;
  if (v === undefined) return undefined;
  if (!isObject(v)) throw invalid(file, 'variants.int8 must be an object');
  const parts = v.parts ?? {};
  if (!isObject(parts)) throw invalid(file, 'variants.int8.parts must be an object like {"text_encoder": ..., "head": ...}');
  const name = (value: unknown, key: string, fallback: string): string => {
    if (value === undefined) return fallback;
    // A file of the folder, by its name: never a path elsewhere.
    if (typeof value !== 'string' || value === '' || value === '.' || value === '..' || /[/\\]/.test(value)) {
      throw invalid(file, `variants.int8.parts.${key} must be a file name in the folder, not ${describeValue(value)}`);
    }
    return value;
  };
  if (v.passed !== undefined && typeof v.passed !== 'boolean')
    throw invalid(file, `variants.int8.passed must be true or false, not ${describeValue(v.passed)}`);
  const finite = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
  const threshold = isObject(v.threshold) ? v.threshold : {};
  return {
    textEncoder: name(parts.text_encoder, 'text_encoder', INT8_PARTS.textEncoder),
    head: name(parts.head, 'head', INT8_PARTS.head),
    passed: v.passed === true,
    worstAgreement: finite(v.worst_top1_agreement),
    minAgreement: finite(threshold.min_top1_agreement),
    faster: int8Faster(v.timing),
    command: typeof v.command === 'string' && v.command.trim() !== '' ? v.command.trim() : undefined,
  };
}

/**
 * model.json's variants.int8.timing ({"ms": {"head": {"fp32": 20.75, "int8": 14.69}, "text_encoder": {...}}}):
 * whether int8's medians, added over the parts timed, are below fp32's (a prediction with a new text runs both
 * parts; with a known text, the head alone, which dominates). Undefined when nothing usable was recorded.
 */
function int8Faster(timing: unknown): boolean | undefined {
  const ms = isObject(timing) && isObject(timing.ms) ? timing.ms : undefined;
  if (!ms) return undefined;
  let fp32 = 0;
  let int8 = 0;
  let timed = 0;
  for (const part of Object.values(ms)) {
    if (!isObject(part)) continue;
    const [a, b] = [part.fp32, part.int8];
    if (typeof a !== 'number' || typeof b !== 'number' || !(a > 0) || !(b > 0) || !Number.isFinite(a) || !Number.isFinite(b)) continue;
    fp32 += a;
    int8 += b;
    timed++;
  }
  return timed > 0 ? int8 < fp32 : undefined;
}

/** The int8 variant's two ONNX parts in the folder. */
function int8Layout(root: string, variant: Int8Variant | undefined): ModelLayout {
  return {
    kind: 'parts',
    textEncoderFile: path.join(root, variant?.textEncoder ?? INT8_PARTS.textEncoder),
    headFile: path.join(root, variant?.head ?? INT8_PARTS.head),
  };
}

/** Precision int8 asks for ONNX Runtime and the folder's two parts: refuses options that say otherwise. */
function checkInt8Options(root: string, files: ModelFolderFiles & { modelFile: string; onnxFile: string }): void {
  if (files.backend === 'torch') {
    throw new ModelFolderError(
      `The int8 variant (${INT8_PARTS.textEncoder} + ${INT8_PARTS.head}) runs on ONNX Runtime, not LibTorch: use BACKEND=onnx or auto, or PRECISION=fp32 for LibTorch`,
      'ERR_MODEL_VARIANT',
      root,
    );
  }
  const explicitWhole = files.modelFile !== path.resolve(root, 'best_model.pth') || files.onnxFile !== path.resolve(root, 'best_model.onnx');
  if (explicitWhole || files.useParts === false) {
    throw new ModelFolderError(
      `The int8 variant is the folder's two parts (${INT8_PARTS.textEncoder} + ${INT8_PARTS.head}), not a whole model: ` +
        'leave MODEL_PATH and ONNX_MODEL_PATH unset to run it, or use PRECISION=fp32 for the whole model',
      'ERR_MODEL_VARIANT',
      root,
    );
  }
}

/** The command that makes the int8 variant: the one model.json recorded, else the exporter's usage for `root`. */
function int8ExportCommand(root: string, variant: Int8Variant | undefined): string {
  const recorded = variant?.command;
  if (recorded) return recorded.startsWith('scripts/') ? `.venv/bin/python ${recorded}` : recorded;
  return `.venv/bin/python scripts/export_model.py --from-folder ${root} --precision int8 --calibration <photos> --validation <other photos>`;
}

/**
 * Precision int8: the variant's layout, or why it cannot serve (named files, the export command): model.json
 * records none, it did not pass the exporter's agreement check, or its files are not there.
 */
async function requireInt8(root: string, variant: Int8Variant | undefined, metadataFile: string | undefined, metadataPath: string): Promise<ModelLayout> {
  const layout = int8Layout(root, variant);
  const files = layoutFiles(layout);
  const missing = (await Promise.all(files.map(async (f) => ((await isFile(f)) ? [] : [f])))).flat();
  const names = files.map((f) => path.basename(f)).join(' + ');
  const make = `make it with: ${int8ExportCommand(root, variant)}; or serve fp32 (PRECISION=fp32)`;
  const notThere = `${missing.join(' and ')} ${missing.length > 1 ? 'do' : 'does'} not exist`;
  if (!variant) {
    throw new ModelFolderError(
      `Missing the int8 variant of ${root}: ${metadataFile ? `${metadataFile} records none (no variants.int8)` : `there is no ${metadataPath} to record it`}` +
        (missing.length > 0 ? ` and ${notThere}` : ` (${names} are there, but their agreement with fp32 was never measured)`) +
        `; ${make}`,
      missing.length > 0 ? 'ERR_MODEL_FILE_MISSING' : 'ERR_MODEL_VARIANT',
      missing[0] ?? metadataPath,
    );
  }
  if (!variant.passed) {
    const worst = variant.worstAgreement !== undefined ? ` (${variant.worstAgreement} for its worst text)` : '';
    const threshold = variant.minAgreement !== undefined ? ` ${variant.minAgreement}` : '';
    throw new ModelFolderError(
      `The int8 variant of ${root} did not pass the exporter's check: its top-1 agreement with fp32${worst} is under the threshold${threshold} ` +
        `(${metadataPath}, variants.int8.passed false); serve fp32 (PRECISION=fp32), or make the variant again with other calibration photos: ${int8ExportCommand(root, variant)}`,
      'ERR_MODEL_VARIANT',
      metadataPath,
    );
  }
  if (missing.length > 0) {
    throw new ModelFolderError(
      `Missing the int8 variant's files: ${notThere} (model.json's variants.int8 names ${names}); ${make}`,
      'ERR_MODEL_FILE_MISSING',
      missing[0],
    );
  }
  return layout;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
