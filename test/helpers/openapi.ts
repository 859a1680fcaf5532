// Answers checked against an OpenAPI document (the one the service serves at /openapi.json): the schema of the
// operation's answer for that status, JSON Schema 2020-12 (OpenAPI 3.1's) with Ajv, its references resolved in
// the document's components. Also the order of the fields: JSON Schema says nothing of it, but the workshop's
// clients get the fields in a fixed order, which the schemas list (api-schema.ts), so an answer whose fields
// come in another order is reported too.
import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

export interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: object; example?: unknown }> }> }>>;
  components: { schemas: Record<string, object> };
}

export interface ResponseCheck {
  /** The operation documents this status with a JSON body. */
  documented: boolean;
  /** Ajv's complaints, and fields out of the schema's order, one a line (empty: the body matches its schema). */
  errors: string[];
}

/** A checker of answers against `document`'s schemas. */
export function openApiValidator(document: OpenApiDocument): (pathname: string, method: string, status: number, body: unknown) => ResponseCheck {
  // strict: false, as OpenAPI adds keywords of its own (example); formats (binary) are not checked.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: 'openapi.json', components: document.components });
  const compiled = new Map<string, ValidateFunction>();
  return (pathname, method, status, body) => {
    const schema = document.paths[pathname]?.[method.toLowerCase()]?.responses[String(status)]?.content?.['application/json']?.schema;
    if (!schema) return { documented: false, errors: [] };
    const key = `${method} ${pathname} ${status}`;
    let validate = compiled.get(key);
    if (!validate) {
      // A reference is resolved in the document; an inline schema (none so far) stands as it is.
      const ref = (schema as { $ref?: string }).$ref;
      validate = ajv.compile(ref ? { $ref: `openapi.json${ref}` } : schema);
      compiled.set(key, validate);
    }
    const errors = validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message} ${JSON.stringify(e.params)}`);
    return { documented: true, errors: [...errors, ...outOfOrder(document, schema, body, '(body)')] };
  };
}

/** Objects in `body` whose fields come in another order than `schema`'s properties list them. */
function outOfOrder(document: OpenApiDocument, schema: unknown, body: unknown, where: string): string[] {
  let s = schema as { $ref?: string; properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[] } | undefined;
  while (s?.$ref) s = document.components.schemas[s.$ref.replace('#/components/schemas/', '')] as typeof s;
  if (!s || typeof body !== 'object' || body === null) return [];
  if (Array.isArray(body)) return s.items ? body.flatMap((item, i) => outOfOrder(document, s.items, item, `${where}[${i}]`)) : [];
  if (!s.properties) return [];
  const listed = Object.keys(s.properties);
  const sent = Object.keys(body).filter((key) => listed.includes(key));
  const expected = listed.filter((key) => key in body);
  const errors = sent.join() === expected.join() ? [] : [`${where} fields in the order ${sent.join(', ')}; the schema lists ${expected.join(', ')}`];
  return [...errors, ...sent.flatMap((key) => outOfOrder(document, s.properties?.[key], (body as Record<string, unknown>)[key], `${where}.${key}`))];
}
