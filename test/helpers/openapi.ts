// Answers checked against an OpenAPI document (the one the service serves at /openapi.json): the schema of the
// operation's answer for that status, JSON Schema 2020-12 (OpenAPI 3.1's) with Ajv, its references resolved in
// the document's components.
import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

export interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: object; example?: unknown }> }> }>>;
  components: { schemas: Record<string, object> };
}

export interface ResponseCheck {
  /** The operation documents this status with a JSON body. */
  documented: boolean;
  /** Ajv's complaints, one a line (empty: the body matches its schema). */
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
    return {
      documented: true,
      errors: validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message} ${JSON.stringify(e.params)}`),
    };
  };
}
