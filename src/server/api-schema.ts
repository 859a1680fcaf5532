// The shapes of the API's bodies, declared once, as JSON Schema constants: the routes type their answers with
// them (`res.json(body satisfies Health)`: a field the schema lacks, or a missing one, fails to compile), and
// openapi.ts serves them as /openapi.json's components. Every object a client sees is closed
// (additionalProperties: false) and lists every field the service sends, in the order it sends them, so that
// schemathesis (test/server/fuzz.test.ts) and test/server/api-schema.test.ts fail on any drift between the two.
// Adding a field to an answer means adding it here first.
import { DEFAULT_TEXT, IMAGE_FORMATS } from './messages.js';
import { MAX_TEXT_BYTES } from './request-body.js';

// --- the type of a schema -------------------------------------------------------------------------------------

type Primitive<T> = T extends 'string' ? string : T extends 'number' | 'integer' ? number : T extends 'boolean' ? boolean : T extends 'null' ? null : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type ObjectOf<S> = S extends { properties: infer P }
  ? Simplify<
      { -readonly [K in keyof P & RequiredKeys<S>]: FromSchema<P[K]> } & {
        -readonly [K in Exclude<keyof P, RequiredKeys<S>>]?: FromSchema<P[K]>;
      }
    >
  : Record<string, unknown>;

type RequiredKeys<S> = S extends { required: readonly (infer R)[] } ? R : never;

type OfType<S, T> = T extends 'object'
  ? ObjectOf<S>
  : T extends 'array'
    ? S extends { items: infer I }
      ? readonly FromSchema<I>[]
      : readonly unknown[]
    : Primitive<T>;

/**
 * The TypeScript type of a JSON Schema constant declared `as const`, for the keywords these schemas use: type
 * (one or a list), const, enum, anyOf, properties with required (the others optional), items. Anything else
 * (no type at all): unknown.
 */
export type FromSchema<S> = S extends { const: infer C }
  ? C
  : S extends { enum: readonly (infer E)[] }
    ? E
    : S extends { anyOf: readonly (infer A)[] }
      ? FromSchema<A>
      : S extends { type: readonly (infer T)[] }
        ? OfType<S, T>
        : S extends { type: infer T }
          ? OfType<S, T>
          : unknown;

// --- the values the schemas fix ---------------------------------------------------------------------------------

/** GET /health's status. */
export const HEALTHY = 'healthy';
/** GET /system_status's model, as the workshop named it. */
export const MODEL_NAME = 'FoodClassifier';
/** POST /reload_model's status on success. */
export const MODEL_RELOADED = 'model reloaded';

const count = { type: 'integer', minimum: 0 } as const;
const device = { type: 'string', enum: ['cpu', 'cuda'] } as const;

// --- POST /predict ----------------------------------------------------------------------------------------------

/** The form /predict reads (multipart/form-data). */
export const Body_predict = {
  type: 'object',
  title: 'Body_predict',
  properties: {
    image: { type: 'string', format: 'binary', title: 'Image', description: `A photo: ${IMAGE_FORMATS}` },
    text: { type: 'string', title: 'Text', default: DEFAULT_TEXT, description: `At most ${MAX_TEXT_BYTES / 1024} KiB of UTF-8 (longer: 413)` },
  },
  required: ['image'],
} as const;

export const Prediction = {
  type: 'object',
  properties: {
    class_name: { type: 'string', description: 'The class, `_` replaced by a space', example: 'pizza' },
    probability: { type: 'number', minimum: 0, maximum: 1, example: 0.9312 },
    confidence: { type: 'string', description: 'probability x 100, two decimals', example: '93.12%' },
  },
  required: ['class_name', 'probability', 'confidence'],
  additionalProperties: false,
} as const;
export type Prediction = FromSchema<typeof Prediction>;

export const PredictionResponse = {
  type: 'object',
  properties: {
    predictions: { type: 'array', items: Prediction, description: 'Most probable first' },
    cache_hit: { type: 'boolean', description: 'Answered from the prediction cache' },
  },
  required: ['predictions', 'cache_hit'],
  additionalProperties: false,
} as const;
export type PredictionResponse = FromSchema<typeof PredictionResponse>;

// --- GET /health, /classes, /system_status ----------------------------------------------------------------------

export const Health = {
  type: 'object',
  properties: { status: { type: 'string', const: HEALTHY }, device },
  required: ['status', 'device'],
  additionalProperties: false,
} as const;
export type Health = FromSchema<typeof Health>;

export const Classes = {
  type: 'object',
  properties: { classes: { type: 'array', items: { type: 'string' }, example: ['pizza', 'steak', 'sushi'] } },
  required: ['classes'],
  additionalProperties: false,
} as const;
export type Classes = FromSchema<typeof Classes>;

/** An LRU cache's figures, as the classifier counts them (camelCase: the library's names). */
const tokenCache = {
  type: 'object',
  description: "The tokenizer's cache of encoded texts",
  properties: { size: count, maxSize: count, hits: count, misses: count },
  required: ['size', 'maxSize', 'hits', 'misses'],
  additionalProperties: false,
} as const;

const predictionCache = {
  type: 'object',
  description: 'The prediction cache (CACHE_SIZE, or Redis with REDIS_URL): Redis keeps its own size (0 here)',
  properties: {
    store: { type: 'string', enum: ['memory', 'redis'] },
    size: count,
    max_size: count,
    hits: count,
    misses: count,
    errors: { ...count, description: 'Lookups and stores that failed (Redis down or slow); counted as misses too' },
    invalid: { ...count, description: 'Redis only: entries found but refused (not signed by this service, or not an answer it makes)' },
  },
  required: ['store', 'size', 'max_size', 'hits', 'misses', 'errors'],
  additionalProperties: false,
} as const;

const textFeatureCache = {
  type: ['object', 'null'],
  description: "The text encoder's outputs kept per distinct text (layout parts; null with whole)",
  properties: { size: count, max_size: count, bytes_per_entry: count, hits: count, misses: count },
  required: ['size', 'max_size', 'bytes_per_entry', 'hits', 'misses'],
  additionalProperties: false,
} as const;

export const SystemStatus = {
  type: 'object',
  description: "The workshop's four fields first, then this service's own",
  properties: {
    device,
    cache_size: { ...count, description: 'Predictions in the cache' },
    model: { type: 'string', const: MODEL_NAME },
    num_classes: count,
    backend: { type: 'string', enum: ['torch', 'onnx'] },
    precision: {
      type: 'string',
      enum: ['fp32', 'int8'],
      description: "fp32: the exported model; int8: the folder's int8 variant (PRECISION=int8, or auto where it passed and is faster)",
    },
    layout: { type: 'string', enum: ['parts', 'whole'], description: 'parts: text encoder (once per distinct text) + head; whole: best_model' },
    model_files: { type: 'array', items: { type: 'string' }, example: ['text_encoder.onnx', 'head.onnx'] },
    threads: { ...count, description: 'Intra-op threads of the forwards' },
    libtorch: {
      type: ['object', 'null'],
      description: 'LibTorch, and the BLAS kernel its matrix products run on (null with ONNX Runtime)',
      properties: {
        version: { type: 'string' },
        blas: {
          type: 'object',
          properties: { library: { type: ['string', 'null'] }, kernel: { type: ['string', 'null'] }, source: { type: 'string' } },
          required: ['library', 'kernel', 'source'],
          additionalProperties: false,
        },
      },
      required: ['version', 'blas'],
      additionalProperties: false,
    },
    onnxruntime: {
      type: ['object', 'null'],
      description: 'ONNX Runtime (null with LibTorch)',
      properties: { version: { type: 'string' } },
      required: ['version'],
      additionalProperties: false,
    },
    device_name: { type: 'string', description: 'The device the forwards run on, as the backend names it', example: 'cpu' },
    libtorch_version: { type: ['string', 'null'] },
    model_generation: { type: 'integer', minimum: 1, description: '1 at start, +1 on every successful reload' },
    prediction_cache: predictionCache,
    token_cache: tokenCache,
    text_feature_cache: textFeatureCache,
    batching: {
      type: 'object',
      properties: { max_batch: { type: 'integer', minimum: 1 }, max_batch_delay_ms: { type: 'number', minimum: 0 } },
      required: ['max_batch', 'max_batch_delay_ms'],
      additionalProperties: false,
    },
    queue: {
      type: 'object',
      description: 'Requests waiting for the model now, the bounds, and the 503s so far',
      properties: {
        waiting: count,
        max_queue: count,
        request_timeout_ms: { type: 'number', minimum: 0 },
        rejected: {
          type: 'object',
          properties: { queue_full: count, timeout: count },
          required: ['queue_full', 'timeout'],
          additionalProperties: false,
        },
        large_decodes: {
          type: 'object',
          description: 'Decodes of large images running and waiting, and the bound (MAX_LARGE_DECODES)',
          properties: { running: count, waiting: count, max: count },
          required: ['running', 'waiting', 'max'],
          additionalProperties: false,
        },
      },
      required: ['waiting', 'max_queue', 'request_timeout_ms', 'rejected', 'large_decodes'],
      additionalProperties: false,
    },
    worker: { type: 'integer', description: 'The process id of the process that answered (with WORKERS, one of them)' },
    workers: { type: 'integer', minimum: 1, description: 'WORKERS: the processes that serve' },
    uptime_s: count,
  },
  required: [
    'device',
    'cache_size',
    'model',
    'num_classes',
    'backend',
    'precision',
    'layout',
    'model_files',
    'threads',
    'libtorch',
    'onnxruntime',
    'device_name',
    'libtorch_version',
    'model_generation',
    'prediction_cache',
    'token_cache',
    'text_feature_cache',
    'batching',
    'queue',
    'worker',
    'workers',
    'uptime_s',
  ],
  additionalProperties: false,
} as const;
export type SystemStatus = FromSchema<typeof SystemStatus>;

// --- POST /reload_model -----------------------------------------------------------------------------------------

export const ReloadResponse = {
  type: 'object',
  properties: {
    status: { type: 'string', const: MODEL_RELOADED },
    model_generation: { type: 'integer', minimum: 1, description: "The answering process's model generation after the reload" },
    workers: { type: 'integer', minimum: 1, description: 'With WORKERS above 1 only: how many workers reloaded (all of them)' },
  },
  required: ['status', 'model_generation'],
  additionalProperties: false,
} as const;
export type ReloadResponse = FromSchema<typeof ReloadResponse>;

// --- errors -----------------------------------------------------------------------------------------------------

/** Every error but the 422s: FastAPI's HTTPException body. */
export const HTTPError = {
  type: 'object',
  title: 'HTTPError',
  properties: { detail: { type: 'string' } },
  required: ['detail'],
  additionalProperties: false,
} as const;
export type HTTPError = FromSchema<typeof HTTPError>;

/** One complaint of a 422, as FastAPI (pydantic 2) words it. */
export const ValidationError = {
  type: 'object',
  title: 'ValidationError',
  properties: {
    type: { type: 'string', example: 'missing' },
    loc: { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'integer' }] }, example: ['body', 'image'] },
    msg: { type: 'string', example: 'Field required' },
    input: { description: 'The value refused (null when there was none)' },
  },
  required: ['type', 'loc', 'msg', 'input'],
  additionalProperties: false,
} as const;
export type ValidationError = FromSchema<typeof ValidationError>;

export const HTTPValidationError = {
  type: 'object',
  title: 'HTTPValidationError',
  properties: { detail: { type: 'array', items: ValidationError } },
  required: ['detail'],
  additionalProperties: false,
} as const;
export type HTTPValidationError = FromSchema<typeof HTTPValidationError>;

/** What the error handler answers: a message (HTTPError), or a 422's complaints (HTTPValidationError). */
export type ErrorBody = { detail: HTTPError['detail'] | HTTPValidationError['detail'] };

/**
 * The named schemas, as /openapi.json's components.schemas: openapi.ts writes a reference to the name wherever
 * one of these objects appears in the document (PredictionResponse's items: Prediction, ...).
 */
export const SCHEMAS = {
  Body_predict,
  Prediction,
  PredictionResponse,
  Health,
  Classes,
  SystemStatus,
  ReloadResponse,
  HTTPError,
  ValidationError,
  HTTPValidationError,
} as const;
