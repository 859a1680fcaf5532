// The OpenAPI document's examples are the service's own answers (src/server/messages.ts), with this
// configuration's limits in them: a document that drifts from the code fails here.
import { describe, expect, it } from 'vitest';

import { DEFAULT_TEXT, INVALID_API_KEY, NOT_AN_IMAGE, QUEUE_FULL, TOP_K } from '../../src/server/messages.js';
import { openApiDocument } from '../../src/server/openapi.js';

type Responses = Record<string, { content: { 'application/json': { schema: { example?: { detail: string } } } } }>;

function predict(doc: object): { description: string; responses: Responses; requestBody: unknown } {
  return (doc as { paths: Record<string, { post: never }> }).paths['/predict'].post;
}

const example = (responses: Responses, status: number) => responses[status]?.content['application/json'].schema.example?.detail;

describe('openApiDocument', () => {
  it("shows this configuration's limits and the service's own messages", () => {
    const doc = openApiDocument({ auth: true, rateLimit: 30, maxUploadBytes: 2 * 1024 * 1024 });
    const { responses, description } = predict(doc);
    expect(example(responses, 413)).toBe('The uploaded file is larger than the limit of 2 MiB (MAX_UPLOAD_MB)');
    expect(example(responses, 429)).toBe('Too many requests: the limit is 30 a minute (RATE_LIMIT); try again later');
    expect(example(responses, 400)).toBe(NOT_AN_IMAGE);
    expect(example(responses, 401)).toBe(INVALID_API_KEY);
    expect(example(responses, 503)).toBe(QUEUE_FULL);
    expect(description).toContain(`The top ${TOP_K} classes`);
    const schemas = (doc as { components: { schemas: { Body_predict: { properties: { text: { default: string } } } } } }).components.schemas;
    expect(schemas.Body_predict.properties.text.default).toBe(DEFAULT_TEXT);
  });

  it('without RATE_LIMIT no 429, without keys no 401', () => {
    const { responses } = predict(openApiDocument({ auth: false, rateLimit: 0, maxUploadBytes: 10 * 1024 * 1024 }));
    expect(responses[429]).toBeUndefined();
    expect(responses[401]).toBeUndefined();
    expect(example(responses, 413)).toBe('The uploaded file is larger than the limit of 10 MiB (MAX_UPLOAD_MB)');
  });
});
