// The OpenAPI document of the workshop's API, as FastAPI would have generated it (served at /openapi.json, and
// read by the interactive docs at /docs). The bodies' schemas are api-schema.ts's, the same constants that type
// the routes' answers; this file adds the paths, which answer each operation gives, and the examples (the
// service's own messages, messages.ts). A named schema is written once, in components.schemas, and referred to.
import { readFileSync } from 'node:fs';

import { Body_predict, Classes, Health, HTTPError, HTTPValidationError, PredictionResponse, ReloadResponse, SCHEMAS, SystemStatus } from './api-schema.js';
import {
  CLASSIFICATION_ERROR,
  hostNotAllowed,
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

const json = (schema: object, description = 'Successful Response', example?: object) => ({
  description,
  content: { 'application/json': { schema, ...(example ? { example } : {}) } },
});
const detail = (description: string, example: string) => json(HTTPError, description, { detail: example });

/** The name of each of api-schema.ts's named schemas, by the object itself. */
const NAMES = new Map<object, string>(Object.entries(SCHEMAS).map(([name, schema]) => [schema, name]));

/** `value`, copied, with each named schema inside it (not `value` itself) replaced by a reference to its name. */
function withRefs(value: unknown, isRoot = true): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (!isRoot && NAMES.has(value)) return { $ref: `#/components/schemas/${NAMES.get(value)}` };
  if (Array.isArray(value)) return value.map((item) => withRefs(item, false));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, withRefs(item, false)]));
}

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
          requestBody: { required: true, content: { 'multipart/form-data': { schema: Body_predict } } },
          responses: {
            200: json(PredictionResponse),
            400: detail('The file is not a decodable image, or has too many pixels', NOT_AN_IMAGE),
            413: detail(`The upload is larger than MAX_UPLOAD_MB, or the text than ${MAX_TEXT_BYTES / 1024} KiB`, uploadTooLarge(options.maxUploadBytes)),
            422: json(HTTPValidationError, 'Validation Error', { detail: [{ type: 'missing', loc: ['body', 'image'], msg: 'Field required', input: null }] }),
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
        get: { summary: 'Health check (never needs a key, never rate-limited)', operationId: 'health', responses: { 200: json(Health) } },
      },
      '/classes': {
        get: op({ summary: 'The class names, in index order', operationId: 'classes', responses: { 200: json(Classes) } }),
      },
      '/system_status': {
        get: op({ summary: 'Device, cache and model', operationId: 'systemStatus', responses: { 200: json(SystemStatus) } }),
      },
      '/metrics': {
        get: op({
          summary: 'Prometheus metrics',
          description: 'Requests, time in queue, preprocessing and forward, batch sizes, caches, reloads, event-loop delay, memory (text exposition format).',
          operationId: 'metrics',
          responses: {
            200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
            503: detail(
              "With WORKERS above 1: the workers' figures could not be gathered (a worker or the primary process did not answer); Retry-After: 5",
              "Metrics unavailable: the primary could not gather the workers' metrics: a worker did not answer within 5 s",
            ),
          },
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
            200: json(ReloadResponse),
            ...((options.auth ? { 403: detail('An API key that is not one of ADMIN_API_KEYS', NOT_AN_ADMIN_KEY) } : {}) as Record<number, object>),
            500: detail(
              'The new model could not be loaded (with WORKERS, in some worker, or one did not answer within RELOAD_TIMEOUT); the current one keeps serving',
              'Reload failed: best_model.pth is truncated or corrupt; the current model keeps serving',
            ),
            503: detail(
              'With WORKERS above 1: the primary process did not answer within RELOAD_TIMEOUT and 10 s; the workers may still reload',
              'Reload failed: the primary process did not answer within 130 s; the workers may still reload',
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
      // api-schema.ts's, each with its named parts referred to by name
      schemas: Object.fromEntries(Object.entries(SCHEMAS).map(([name, schema]) => [name, withRefs(schema)])),
    },
  };
  // The paths' schemas: references to the named ones
  return withRefs(document) as object;
}
