// A model folder as the workshop's users have one, and as scripts/export_model.py writes one:
//   best_model.pth       TorchScript: forward(image, input_ids, attention_mask) -> logits   (required for LibTorch)
//   best_model.onnx      the same model in ONNX                                             (required for ONNX Runtime)
//   class_mapping.json   {"pizza": 0, "steak": 1, ...}                                        (required)
//   vocab.txt            the WordPiece vocabulary of the text encoder                         (required)
//   model.json           what the exporter knows: preprocessing, max_length, classes, files    (optional)
// Reading it checks everything that can be checked without LibTorch, and names the file at fault.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { DEFAULT_PREPROCESS_OPTIONS, type PreprocessOptions } from './preprocess.js';

/** The image preprocessing a model expects (model.json may say; the workshop's torchvision pipeline if not). */
export type Preprocessing = Omit<PreprocessOptions, 'maxPixels'>;

const { maxPixels: _maxPixels, ...workshop } = DEFAULT_PREPROCESS_OPTIONS;
export const WORKSHOP_PREPROCESSING: Readonly<Preprocessing> = Object.freeze(workshop);

export const WORKSHOP_MAX_LENGTH = 128;

export interface ModelFolder {
  /** The folder, absolute. */
  dir: string;
  /** The backend the folder was read for: its model file is there. */
  backend: Backend;
  /** The model file the backend loads: modelFile (LibTorch) or onnxFile (ONNX Runtime). */
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
}

/** What is wrong with a model folder; `file` is the file at fault. */
export class ModelFolderError extends Error {
  override readonly name = 'ModelFolderError';

  constructor(
    message: string,
    readonly code: 'ERR_MODEL_FILE_MISSING' | 'ERR_MODEL_FILE_INVALID',
    readonly file: string,
  ) {
    super(message);
  }
}

/** What runs the model: LibTorch (through the addon) or ONNX Runtime. */
export type Backend = 'torch' | 'onnx';

export interface ModelFolderFiles {
  /** Default `torch`: the TorchScript file is required; with `onnx`, the ONNX file instead. */
  backend?: Backend;
  /** Default `<dir>/best_model.pth`. */
  modelFile?: string;
  /** Default `<dir>/best_model.onnx`. */
  onnxFile?: string;
  /** Default `<dir>/class_mapping.json`. */
  classMappingFile?: string;
  /** Default `<dir>/vocab.txt`. */
  vocabFile?: string;
}

export async function readModelFolder(dir: string, files: ModelFolderFiles = {}): Promise<ModelFolder> {
  const root = path.resolve(dir);
  const backend = files.backend ?? 'torch';
  const modelFile = path.resolve(root, files.modelFile ?? 'best_model.pth');
  const onnxFile = path.resolve(root, files.onnxFile ?? 'best_model.onnx');
  const backendFile = backend === 'onnx' ? onnxFile : modelFile;
  const classMappingFile = path.resolve(root, files.classMappingFile ?? 'class_mapping.json');
  const vocabFile = path.resolve(root, files.vocabFile ?? 'vocab.txt');
  for (const [file, what] of [
    [backendFile, backend === 'onnx' ? 'the model (ONNX)' : 'the model (TorchScript)'],
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
  if (metadataFile) {
    const metadata = parseJson(await readFile(metadataFile, 'utf8'), metadataFile) as Record<string, unknown>;
    preprocessing = parsePreprocessing(metadata.preprocessing, metadataFile) ?? preprocessing;
    if (metadata.max_length !== undefined) {
      if (!Number.isInteger(metadata.max_length) || (metadata.max_length as number) < 2) {
        throw invalid(metadataFile, `max_length must be an integer of at least 2, not ${JSON.stringify(metadata.max_length)}`);
      }
      maxLength = metadata.max_length as number;
    }
    if (Array.isArray(metadata.classes) && metadata.classes.join('\n') !== classNames.join('\n')) {
      throw invalid(
        classMappingFile,
        `its classes differ from those the model was exported with (${metadataFile}): ` +
          'the class mapping belongs to another model',
      );
    }
  }
  return { dir: root, backend, backendFile, modelFile, onnxFile, classMappingFile, vocabFile, metadataFile, classNames, preprocessing, maxLength };
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
      throw invalid(file, `the index of '${name}' is ${JSON.stringify(index)}; expected an integer from 0 to ${entries.length - 1}`);
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
  const triple = (v: unknown, min: number) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > min);
  if (!positive(p.resize) || !positive(p.crop) || !triple(p.mean, -Infinity) || !triple(p.std, 0)) {
    throw invalid(file, 'preprocessing must have integer resize and crop, and mean and std of three numbers (std > 0)');
  }
  if ((p.crop as number) > (p.resize as number)) throw invalid(file, 'preprocessing.crop is larger than resize');
  return { resize: p.resize, crop: p.crop, mean: p.mean, std: p.std } as Preprocessing;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(file, `it is not valid JSON (${(err as Error).message})`);
  }
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
