// GET /openapi.json and the interactive docs at /docs (Swagger UI, as FastAPI serves them; its files come from
// the swagger-ui-dist package, so the page works without reaching a CDN).
import { createRequire } from 'node:module';
import path from 'node:path';

import express, { type Router } from 'express';

import { openApiDocument, type OpenApiOptions } from '../openapi.js';
import { strictRouter } from './router.js';

const require = createRequire(import.meta.url);
const SWAGGER_UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Food classifier - Swagger UI</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

/** The files of swagger-ui-dist the docs page uses. */
const DOCS_ASSETS = new Set(['swagger-ui.css', 'swagger-ui-bundle.js', 'favicon-32x32.png', 'favicon-16x16.png']);

const DOCS_INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });\n`;

export function docsRoutes(options: OpenApiOptions): Router {
  const router = strictRouter();
  const document = openApiDocument(options);
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(DOCS_PAGE);
  });
  router.get('/docs/init.js', (_req, res) => {
    res.type('js').send(DOCS_INIT);
  });
  // Only the files the page loads: not the rest of swagger-ui-dist (its package.json, source maps, the stock
  // index.html that points at a third-party petstore).
  const assets = express.static(SWAGGER_UI_DIR, { index: false, fallthrough: true, maxAge: '1d' });
  router.use('/docs/assets', (req, res, next) => (req.method === 'GET' && DOCS_ASSETS.has(req.path.slice(1)) ? assets(req, res, next) : next()));
  return router;
}
