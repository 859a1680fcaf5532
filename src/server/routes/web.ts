// The web page at `/`: pick or drop a photo, add a text, see the top 5 as bars. Static files, served as they are.
import { fileURLToPath } from 'node:url';

import express, { type Router } from 'express';

import { strictRouter } from './router.js';

/** src/server/public, from src/server/routes (tsx) and from dist/server/routes (the build) alike. */
export const PUBLIC_DIR = fileURLToPath(new URL('../../../src/server/public/', import.meta.url));

export function webRoutes(): Router {
  const router = strictRouter();
  // Browsers ask for it on every visit; no icon is better than a logged 404.
  router.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });
  // No redirect of a folder's path to the path with a slash: serve-static builds that Location from the request
  // path, and `/\evil.example/%2e%2e` (the web page's own folder) became `/\evil.example/%2e%2e/`, which
  // browsers read as another host.
  router.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: 0, redirect: false }));
  return router;
}
