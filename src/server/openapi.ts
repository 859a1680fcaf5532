// The OpenAPI document of the workshop's API, as FastAPI would have generated it (served at /openapi.json, and
// read by the interactive docs at /docs). Written by hand: Express knows nothing of the schemas.
import { readFileSync } from 'node:fs';

import {
  CLASSIFICATION_ERROR,
  DEFAULT_TEXT,
  hostNotAllowed,
  IMAGE_FORMATS,
  INVALID_API_KEY,
  NOT_AN_ADMIN_KEY,
  NOT_AN_IMAGE,
  QUEUE_FULL,
  TOP_K,
  tooManyRequests,
  uploadTooLarge,
} from './messages.js';
import { MAX_TEXT_BYTES } from './request-body.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const json = (schema: object, description = 'Successful Response') => ({ description, content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const detail = (description: string, example: string) =>
  json({ type: 'object', properties: { detail: { type: 'string' } }, required: ['detail'], example: { detail: example } }, description);

export interface OpenApiOptions {
  /** API_KEYS (or ADMIN_API_KEYS) set: the protected operations say so, and Swagger UI offers a key field. */
  auth: boolean;
  /** RATE_LIMIT, requests a minute (0: off, no 429). */
  rateLimit: number;
  /** MAX_UPLOAD_MB in bytes, for the 413's example. */
  maxUploadBytes: number;
}

const SECURITY = [{ bearer: [] }, { apiKey: [] }];

/** The answers every protected operation may give besides its own. */
function guarded(responses: Record<number, object>, { auth, rateLimit }: OpenApiOptions, isPublic = false): Record<number, object> {
  const extra: Record<number, object> = {};
  if (auth && !isPublic) {
    extra[401] = detail('No API key, or an unknown one (WWW-Authenticate says which)', INVALID_API_KEY);
  }
  if (!auth) {
    extra[403] = detail('A Host header outside ALLOWED_HOSTS, or a state-changing request from another origin', hostNotAllowed('example.com'));
  }
  if (rateLimit > 0 && !isPublic) extra[429] = detail('More requests a minute than RATE_LIMIT; Retry-After says when to try again', tooManyRequests(rateLimit));
  return { ...responses, ...extra };
}

export function openApiDocument(options: OpenApiOptions): object {
  const op = (operation: { responses: Record<number, object> } & Record<string, unknown>, isPublic = false) => ({
    ...operation,
    responses: guarded(operation.responses, options, isPublic),
    ...(options.auth && !isPublic ? { security: SECURITY } : {}),
  });
  const document = {
    openapi: '3.1.0',
    info: {
      title: 'Food classifier',
      version,
      description:
        "The workshop's food classifier (ResNet18 + BERT), served from Node.js with LibTorch. " +
        "Same paths, fields and answers as the workshop's FastAPI service.",
    },
    paths: {
      '/predict': {
        post: op({
          summary: 'Classify a food photo',
          description: `The top ${TOP_K} classes (fewer when the model has fewer), most probable first. A repeated image and text is answered from the prediction cache (\`cache_hit\`).`,
          operationId: 'predict',
          requestBody: { required: true, content: { 'multipart/form-data': { schema: ref('Body_predict') } } },
          responses: {
            200: json(ref('PredictionResponse')),
            400: detail('The file is not a decodable image, or has too many pixels', NOT_AN_IMAGE),
            413: detail(`The upload is larger than MAX_UPLOAD_MB, or the text than ${MAX_TEXT_BYTES / 1024} KiB`, uploadTooLarge(options.maxUploadBytes)),
            422: json(ref('HTTPValidationError'), 'Validation Error'),
            500: detail('The model failed', CLASSIFICATION_ERROR),
            503: {
              ...detail(
                'Too busy: MAX_QUEUE requests already wait for the model, or this one waited longer than REQUEST_TIMEOUT_MS. Retry-After says when to try again',
                QUEUE_FULL,
              ),
              headers: { 'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer' } } },
            },
          },
        }),
      },
      '/health': {
        get: { summary: 'Health check (never needs a key, never rate-limited)', operationId: 'health', responses: { 200: json(ref('Health')) } },
      },
      '/classes': {
        get: op({ summary: 'The class names, in index order', operationId: 'classes', responses: { 200: json(ref('Classes')) } }),
      },
      '/system_status': {
        get: op({ summary: 'Device, cache and model', operationId: 'systemStatus', responses: { 200: json(ref('SystemStatus')) } }),
      },
      '/metrics': {
        get: op({
          summary: 'Prometheus metrics',
          description: 'Requests, time in queue, preprocessing and forward, batch sizes, caches, reloads, event-loop delay, memory (text exposition format).',
          operationId: 'metrics',
          responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
        }),
      },
      '/reload_model': {
        post: op({
          summary: 'Reload the model, the class mapping and the vocabulary',
          description:
            'The new model is loaded and warmed up while the current one serves; it replaces it only on success. The caches are emptied. ' +
            'With ADMIN_API_KEYS, only those keys may (403 for another key).',
          operationId: 'reloadModel',
          responses: {
            200: json(ref('ReloadResponse')),
            ...((options.auth ? { 403: detail('An API key that is not one of ADMIN_API_KEYS', NOT_AN_ADMIN_KEY) } : {}) as Record<number, object>),
            500: detail(
              'The new model could not be loaded; the current one keeps serving',
              'Reload failed: best_model.pth is truncated or corrupt; the current model keeps serving',
            ),
          },
        }),
      },
    },
    components: {
      ...(options.auth
        ? {
            securitySchemes: {
              bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <one of API_KEYS>' },
              apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'X-API-Key: <one of API_KEYS>' },
            },
          }
        : {}),
      schemas: {
        Body_predict: {
          type: 'object',
          title: 'Body_predict',
          properties: {
            image: { type: 'string', format: 'binary', title: 'Image', description: `A photo: ${IMAGE_FORMATS}` },
            text: { type: 'string', title: 'Text', default: DEFAULT_TEXT, description: `At most ${MAX_TEXT_BYTES / 1024} KiB of UTF-8 (longer: 413)` },
          },
          required: ['image'],
        },
        Prediction: {
          type: 'object',
          properties: {
            class_name: { type: 'string', description: 'The class, `_` replaced by a space', example: 'pizza' },
            probability: { type: 'number', minimum: 0, maximum: 1, example: 0.9312 },
            confidence: { type: 'string', description: 'probability x 100, two decimals', example: '93.12%' },
          },
          required: ['class_name', 'probability', 'confidence'],
        },
        PredictionResponse: {
          type: 'object',
          properties: { predictions: { type: 'array', items: ref('Prediction') }, cache_hit: { type: 'boolean' } },
          required: ['predictions', 'cache_hit'],
        },
        Health: {
          type: 'object',
          properties: { status: { type: 'string', const: 'healthy' }, device: { type: 'string', enum: ['cpu', 'cuda'] } },
          required: ['status', 'device'],
        },
        Classes: {
          type: 'object',
          properties: { classes: { type: 'array', items: { type: 'string' }, example: ['pizza', 'steak', 'sushi'] } },
          required: ['classes'],
        },
        SystemStatus: {
          type: 'object',
          properties: {
            device: { type: 'string', enum: ['cpu', 'cuda'] },
            cache_size: { type: 'integer', description: 'Predictions in the cache' },
            model: { type: 'string', const: 'FoodClassifier' },
            num_classes: { type: 'integer' },
            backend: { type: 'string', enum: ['torch', 'onnx'] },
            precision: {
              type: 'string',
              enum: ['fp32', 'int8'],
              description: "fp32: the exported model; int8: the folder's int8 variant (PRECISION=int8, or auto where it passed and is faster)",
            },
            layout: { type: 'string', enum: ['parts', 'whole'], description: 'parts: text encoder (once per distinct text) + head; whole: best_model' },
            model_files: { type: 'array', items: { type: 'string' }, example: ['text_encoder.onnx', 'head.onnx'] },
            threads: { type: 'integer', description: 'Intra-op threads of the forwards' },
            libtorch: {
              type: ['object', 'null'],
              description: 'LibTorch, and the BLAS kernel its matrix products run on (null with ONNX Runtime)',
              properties: { version: { type: 'string' }, blas: { type: 'object' } },
            },
            onnxruntime: { type: ['object', 'null'], properties: { version: { type: 'string' } } },
            device_name: { type: 'string', example: 'cpu' },
            model_generation: { type: 'integer', description: '1 at start, +1 on every successful reload' },
            prediction_cache: { type: 'object' },
            token_cache: { type: 'object' },
            text_feature_cache: { type: ['object', 'null'], description: "The text encoder's outputs kept per distinct text (layout parts)" },
            batching: { type: 'object', properties: { max_batch: { type: 'integer' }, max_batch_delay_ms: { type: 'number' } } },
            queue: { type: 'object', description: 'Requests waiting for the model now, the bound, and the 503s so far' },
            libtorch_version: { type: ['string', 'null'] },
            uptime_s: { type: 'integer' },
          },
          required: ['device', 'cache_size', 'model', 'num_classes'],
        },
        ReloadResponse: {
          type: 'object',
          properties: { status: { type: 'string', const: 'model reloaded' }, model_generation: { type: 'integer' } },
          required: ['status'],
        },
        ValidationError: {
          type: 'object',
          title: 'ValidationError',
          properties: {
            loc: { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'integer' }] } },
            msg: { type: 'string' },
            type: { type: 'string' },
          },
          required: ['loc', 'msg', 'type'],
        },
        HTTPValidationError: {
          type: 'object',
          title: 'HTTPValidationError',
          properties: { detail: { type: 'array', items: ref('ValidationError') } },
        },
      },
    },
  };
  return document;
}
