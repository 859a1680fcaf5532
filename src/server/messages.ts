// The answers clients read, in one place: the routes and middleware that give them and the OpenAPI document
// that shows them as examples (openapi.ts) take them from here, so the two cannot drift apart.
import { DEFAULT_TEXT } from '../classifier/classifier.js';
import { IMAGE_FORMATS, NOT_AN_IMAGE } from '../classifier/image-error.js';
import { MAX_TEXT_BYTES } from './request-body.js';

export { DEFAULT_TEXT, IMAGE_FORMATS, NOT_AN_IMAGE };

/** /predict answers the most probable classes, at most this many. */
export const TOP_K = 5;

export const QUEUE_FULL = 'The service is busy: too many requests are waiting for the model (MAX_QUEUE); try again shortly';
export const WAITED_TOO_LONG = 'The service is busy: the request waited longer than REQUEST_TIMEOUT_MS for the model; try again shortly';
/** A forward that failed: the cause goes to the log only. */
export const CLASSIFICATION_ERROR = 'Classification error';

export const NOT_AUTHENTICATED = 'Not authenticated: send an API key (Authorization: Bearer <key>, or X-API-Key: <key>)';
export const INVALID_API_KEY = 'Invalid API key';
export const NOT_AN_ADMIN_KEY = 'This API key may not reload the model: only ADMIN_API_KEYS may';

export function hostNotAllowed(host: string): string {
  return `Host '${host.slice(0, 100)}' is not allowed (ALLOWED_HOSTS, or set API_KEYS)`;
}

export function tooManyRequests(perMinute: number): string {
  return `Too many requests: the limit is ${perMinute} a minute (RATE_LIMIT); try again later`;
}

/** A form field over MAX_TEXT_BYTES (request-body.ts): the text, or another field of that size. */
export function textTooLong(field: string | undefined): string {
  const kib = MAX_TEXT_BYTES / 1024;
  return `The form field '${(field ?? '').slice(0, 100)}' is longer than the limit of ${kib} KiB (${MAX_TEXT_BYTES} bytes of UTF-8; 128 tokens never need more than 39 KB)`;
}

export function uploadTooLarge(maxUploadBytes: number): string {
  const mib = maxUploadBytes / (1024 * 1024);
  const limit = mib >= 1 ? `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB` : `${maxUploadBytes} bytes`;
  return `The uploaded file is larger than the limit of ${limit} (MAX_UPLOAD_MB)`;
}
