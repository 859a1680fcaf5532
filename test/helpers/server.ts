// The service for the tests: its launcher (scripts/lib/service.ts, which bench/ uses too), re-exported under the
// tests' names, and small HTTP helpers to talk to it.
import { afterAll, expect } from 'vitest';

import { type LogEntry, type ServiceProcess, startServer } from '../../scripts/lib/service.js';

export {
  DEFAULT_MODEL_DIR,
  type Exit,
  type LogEntry,
  REPO,
  SERVICE_NODE_FLAGS,
  type ServerOptions,
  serverEnv,
  spawnServer,
  startServer,
  type WaitForLogOptions,
} from '../../scripts/lib/service.js';

/** A service process that a test started (scripts/lib/service.ts). */
export type TestServer = ServiceProcess;

export interface UseServersOptions {
  /** Variables every server of the file gets (a server's own `env` overrides them). */
  env?: Record<string, string | undefined>;
  /** afterAll expects each server to exit 0 (no signal) on its SIGTERM. */
  expectCleanExit?: boolean;
}

/**
 * The servers of a test file, started when a test asks and stopped (SIGTERM, awaited) by an afterAll that this
 * call registers: call it at the file's top level. vitest runs afterAll hooks last registered first, so a
 * resource the servers use (a Redis, say) is released by an afterAll registered before this call.
 *   const server = useServers();
 *   const s = await server({ RATE_LIMIT: '3' });
 */
export function useServers(options: UseServersOptions = {}): (env?: Record<string, string | undefined>) => Promise<TestServer> {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) {
      const exit = await s.stop();
      if (options.expectCleanExit) expect(exit).toEqual({ code: 0, signal: null });
    }
  });
  return async (env = {}) => {
    const s = await startServer({ ...options.env, ...env });
    servers.push(s);
    return s;
  };
}

/**
 * Resolves once every line the server has logged before now is in `server.logs`: sends GET /health with an id
 * of its own and waits for that request's line (the service writes its stdout in order). For a check that a
 * line was NOT logged, without a sleep. Not for a cluster (each worker writes to the pipe on its own).
 */
export async function logsSoFar(server: TestServer, headers: Record<string, string> = {}): Promise<LogEntry[]> {
  const id = `logs-so-far-${Math.random().toString(36).slice(2)}`;
  const since = server.logs.length;
  const res = await fetch(`${server.url}/health`, { headers: { ...headers, 'X-Request-Id': id } });
  await res.arrayBuffer();
  await server.waitForLog((l) => (l.req as { id?: unknown } | undefined)?.id === id, { since, what: `the log line of GET /health (X-Request-Id ${id})` });
  return server.logs;
}

export interface PredictAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** POST /predict with `image` (bytes; or omitted) and `text` (omitted when undefined), multipart as curl -F sends. */
export async function predict(url: string, image: Uint8Array | undefined, text?: string, filename = 'photo.jpg'): Promise<PredictAnswer> {
  const form = new FormData();
  if (image) form.append('image', new Blob([image]), filename);
  if (text !== undefined) form.append('text', text);
  const res = await fetch(`${url}/predict`, { method: 'POST', body: form });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

export async function getJson(url: string, pathname: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${pathname}`, init);
  return { status: res.status, body: await res.json() };
}
