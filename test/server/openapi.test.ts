// The OpenAPI document: its examples are the service's own answers (src/server/messages.ts), with this
// configuration's limits in them, and each is valid against the schema it illustrates; its schemas are
// api-schema.ts's, named once in components.schemas, and every object a client reads in them is closed (a
// field the service would add without declaring it fails test/server/api-schema.test.ts and schemathesis).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { HEALTHY, MODEL_NAME, MODEL_RELOADED, SCHEMAS } from '../../src/server/api-schema.js';
import { DEFAULT_TEXT, INVALID_API_KEY, NOT_AN_IMAGE, QUEUE_FULL, TOP_K } from '../../src/server/messages.js';
import { openApiDocument } from '../../src/server/openapi.js';
import { type OpenApiDocument, openApiValidator } from '../helpers/openapi.js';
import { REPO } from '../helpers/server.js';

type Responses = Record<string, { content: { 'application/json': { schema: object; example?: { detail: string } } } }>;

function predict(doc: object): { description: string; responses: Responses; requestBody: unknown } {
  return (doc as { paths: Record<string, { post: never }> }).paths['/predict'].post;
}

const example = (responses: Responses, status: number) => responses[status]?.content['application/json'].example?.detail;

const CONFIGURATIONS = [
  { auth: true, rateLimit: 30, maxUploadBytes: 2 * 1024 * 1024 },
  { auth: false, rateLimit: 0, maxUploadBytes: 10 * 1024 * 1024 },
];

/** Every object schema under `schema` (itself included), with where it is. */
function objects(schema: unknown, where: string, found: [string, Record<string, unknown>][] = []): [string, Record<string, unknown>][] {
  if (typeof schema !== 'object' || schema === null) return found;
  const s = schema as Record<string, unknown>;
  if (s.properties) found.push([where, s]);
  for (const [key, value] of Object.entries(s.properties ?? {})) objects(value, `${where}.${key}`, found);
  if (s.items) objects(s.items, `${where}[]`, found);
  return found;
}

describe('openApiDocument', () => {
  it("shows this configuration's limits and the service's own messages", () => {
    const doc = openApiDocument(CONFIGURATIONS[0]);
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
    const { responses } = predict(openApiDocument(CONFIGURATIONS[1]));
    expect(responses[429]).toBeUndefined();
    expect(responses[401]).toBeUndefined();
    expect(example(responses, 413)).toBe('The uploaded file is larger than the limit of 10 MiB (MAX_UPLOAD_MB)');
  });

  it.each(CONFIGURATIONS)('every example is valid against its schema (%o)', (options) => {
    const doc = openApiDocument(options) as OpenApiDocument;
    const check = openApiValidator(doc);
    let examples = 0;
    for (const [pathname, operations] of Object.entries(doc.paths)) {
      for (const [method, { responses }] of Object.entries(operations)) {
        for (const [status, response] of Object.entries(responses)) {
          const sample = response.content?.['application/json']?.example;
          if (sample === undefined) continue;
          examples++;
          expect(check(pathname, method, Number(status), sample).errors, `${method} ${pathname} ${status}`).toEqual([]);
        }
      }
    }
    expect(examples).toBeGreaterThan(5);
  });

  it("the answers' schemas are api-schema.ts's, referred to by name, every object in them closed", () => {
    const doc = openApiDocument(CONFIGURATIONS[0]) as OpenApiDocument;
    expect(Object.keys(doc.components.schemas)).toEqual(Object.keys(SCHEMAS));
    const ok = predict(doc).responses[200].content['application/json'].schema;
    expect(ok).toEqual({ $ref: '#/components/schemas/PredictionResponse' });
    expect(doc.components.schemas.PredictionResponse).toMatchObject({ properties: { predictions: { items: { $ref: '#/components/schemas/Prediction' } } } });
    // The values the routes send, from the same constants
    expect(doc.components.schemas.Health).toMatchObject({ properties: { status: { const: HEALTHY } } });
    expect(doc.components.schemas.SystemStatus).toMatchObject({ properties: { model: { const: MODEL_NAME } } });
    expect(doc.components.schemas.ReloadResponse).toMatchObject({ properties: { status: { const: MODEL_RELOADED } } });
    // Body_predict is the request's form, not an answer
    const open = Object.entries(SCHEMAS)
      .filter(([name]) => name !== 'Body_predict')
      .flatMap(([name, schema]) => objects(schema, name))
      .filter(([, s]) => s.additionalProperties !== false)
      .map(([where]) => where);
    expect(open).toEqual([]);
  });
});

/** The argument of every `.json(...)` call in `source` (parentheses balanced). */
function jsonArguments(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/\.json\(/g)) {
    let depth = 1;
    let end = match.index + match[0].length;
    for (; end < source.length && depth > 0; end++) depth += source[end] === '(' ? 1 : source[end] === ')' ? -1 : 0;
    found.push(source.slice(match.index + match[0].length, end - 1).trim());
  }
  return found;
}

describe("the service's JSON answers", () => {
  it("each is typed with its schema (satisfies one of api-schema.ts's types), /openapi.json's own document aside", () => {
    const SERVER = path.join(REPO, 'src', 'server');
    const files = [
      ...readdirSync(SERVER).map((f) => path.join(SERVER, f)),
      ...readdirSync(path.join(SERVER, 'routes')).map((f) => path.join(SERVER, 'routes', f)),
    ];
    const untyped: string[] = [];
    let typed = 0;
    for (const file of files.filter((f) => f.endsWith('.ts'))) {
      // comments out (api-schema.ts's header shows the pattern)
      const code = readFileSync(file, 'utf8').replace(/^\s*\/\/.*$/gm, '');
      for (const argument of jsonArguments(code)) {
        if (argument === '' || argument === 'document') continue;
        if (/ satisfies [A-Z]\w*$/.test(argument)) typed++;
        else untyped.push(`${path.relative(REPO, file)}: .json(${argument.slice(0, 80)})`);
      }
    }
    expect(untyped).toEqual([]);
    expect(typed).toBeGreaterThanOrEqual(9);
  });
});
