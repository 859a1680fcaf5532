// The service as its own Node process, for the tests and the benchmarks: `src/server/main.ts` through tsx (or its
// build in dist/, as `npm start` runs it) with npm start's Node flags, on a free port, the real addon and a real
// model folder; resolved once it listens, its JSON log parsed as it comes. It lives outside test/ because bench/
// starts the service with it too: neither test/ nor bench/ imports the other (test/helpers/server.ts re-exports it).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { VARIABLES } from '../../src/server/config.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_MODEL_DIR = path.join(REPO, 'models');
const MAIN = path.join(REPO, 'src', 'server', 'main.ts');
const BUILT_MAIN = path.join(REPO, 'dist', 'server', 'main.js');

/**
 * The Node flags `npm start` gives the service (package.json's start script: `node <flags> dist/server/main.js`),
 * so that the tests and benchmarks run it as it is deployed; the Dockerfile's CMD is checked against the same
 * script (test/python/test_deploy.py).
 */
export const SERVICE_NODE_FLAGS: string[] = (() => {
  const { scripts } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  // Flags of the form --name or --name=value only: anything else fails here, loudly, at the first test.
  const start = /\bnode((?: --[\w-]+(?:=\S+)?)*) dist\/server\/main\.js\b/.exec(scripts.start ?? '');
  if (!start) throw new Error(`package.json's start script does not run "node [--flags] dist/server/main.js": ${scripts.start}`);
  return start[1]!.trim().split(' ').filter(Boolean);
})();

export interface ServerOptions {
  /** `source` (default): src/server/main.ts through tsx; `dist`: the build, as `npm start` runs it. */
  entry?: 'source' | 'dist';
  /** Drop the service's variables that the caller's environment holds (only `env` and the defaults apply). */
  cleanEnv?: boolean;
  cwd?: string;
  /** Node flags in place of npm start's (SERVICE_NODE_FLAGS), for a benchmark's comparison. */
  nodeFlags?: string[];
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One line of the service's log (pino's JSON, parsed; a line that is not JSON: `{ msg, notJson: true }`). */
export type LogEntry = Record<string, unknown>;

export interface WaitForLogOptions {
  /** Only lines from this index of `logs` on (e.g. `logs.length` before the request whose line is awaited). */
  since?: number;
  /** Default 30 s: generous; the line normally arrives within milliseconds of the event that writes it. */
  timeoutMs?: number;
  /** What is awaited, for the error message. */
  what?: string;
}

export interface ServiceProcess {
  url: string;
  child: ChildProcess;
  /** stdout's JSON log lines so far, parsed. */
  logs: LogEntry[];
  stderr(): string;
  /**
   * Resolves with the first log line that `match` accepts, among those logged so far or to come. The service
   * writes a request's line as the response finishes, so a client can have the answer before the line has
   * reached this process: a test awaits the line, never reads `logs` for it right after a response. Rejects,
   * with the log and stderr so far, when stdout ends without such a line or after `timeoutMs`.
   */
  waitForLog(match: (entry: LogEntry) => boolean, options?: WaitForLogOptions): Promise<LogEntry>;
  /** Resolves when the process has exited and its stdout and stderr have been read to their end (`logs` complete). */
  exited: Promise<Exit>;
  /** Sends `signal` (default SIGTERM) and waits for the exit (as `exited`). */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
  /** True while the process runs. */
  alive(): boolean;
}

/**
 * The process's environment for a server: PORT 0 (a free one), the default model, 2 threads, and an empty
 * ENV_FILE, so that a developer's own .env in the repository never reaches a test server; `env` overrides.
 */
export function serverEnv(env: Record<string, string | undefined> = {}, cleanEnv = false): NodeJS.ProcessEnv {
  const base = { ...process.env };
  if (cleanEnv) for (const v of VARIABLES) delete base[v.name];
  return { ...base, PORT: '0', MODEL_DIR: DEFAULT_MODEL_DIR, THREADS: '2', LOG_LEVEL: 'info', ENV_FILE: '/dev/null', ...env };
}

/** Spawns the service with `args`; does not wait for it to listen. */
export function spawnServer(env: Record<string, string | undefined> = {}, args: string[] = [], cwd = REPO, options: ServerOptions = {}): ChildProcess {
  const entry = options.entry === 'dist' ? [BUILT_MAIN] : ['--import', 'tsx', MAIN];
  return spawn(process.execPath, [...(options.nodeFlags ?? SERVICE_NODE_FLAGS), ...entry, ...args], {
    cwd,
    env: serverEnv(env, options.cleanEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts the service and resolves once it listens (its 'listening' log line); rejects with its stderr if it exits. */
export function startServer(env: Record<string, string | undefined> = {}, cwd = REPO, options: ServerOptions = {}): Promise<ServiceProcess> {
  const child = spawnServer(env, [], options.cwd ?? cwd, options);
  const logs: LogEntry[] = [];
  /** Called with each new log line, and with undefined once stdout has ended. */
  const listeners = new Set<(entry: LogEntry | undefined) => void>();
  let stdoutEnded = false;
  let stderr = '';
  let pending = '';
  let running = true;
  // 'exit' can come before the last of stdout has been read: `exited` waits for 'close' (both pipes at their
  // end), so that the lines a process writes just before it exits are in `logs` once a test has awaited it. A
  // process of its own that holds the pipes open (none should) delays it by 10 s at most.
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => {
      running = false;
      const late = setTimeout(() => resolve({ code, signal }), 10_000);
      late.unref();
      child.once('close', () => {
        clearTimeout(late);
        resolve({ code, signal });
      });
    }),
  );
  const state = (): string => (running ? 'running' : `exited (${child.exitCode ?? child.signalCode})`);
  const waitForLog = (match: (entry: LogEntry) => boolean, { since = 0, timeoutMs = 30_000, what = 'the awaited log line' }: WaitForLogOptions = {}) =>
    new Promise<LogEntry>((resolve, reject) => {
      const settle = (outcome: () => void): void => {
        clearTimeout(timer);
        listeners.delete(listener);
        outcome();
      };
      const fail = (why: string): void => {
        const lines = logs.map((l) => JSON.stringify(l)).join('\n');
        settle(() => reject(new Error(`${what}: ${why} (the server: ${state()}). Its log:\n${lines}\nstderr:\n${stderr}`)));
      };
      const listener = (entry: LogEntry | undefined): void => {
        if (entry === undefined) {
          fail("the server's stdout ended without it");
          return;
        }
        try {
          if (match(entry)) settle(() => resolve(entry));
        } catch (err) {
          settle(() => reject(err as Error));
        }
      };
      const timer = setTimeout(() => fail(`not logged within ${timeoutMs} ms`), timeoutMs);
      listeners.add(listener);
      for (const entry of logs.slice(since)) {
        if (!listeners.has(listener)) return;
        listener(entry);
      }
      if (stdoutEnded && listeners.has(listener)) listener(undefined);
    });
  const addLine = (line: string): void => {
    if (!line.trim()) return;
    let entry: LogEntry;
    try {
      entry = JSON.parse(line) as LogEntry;
    } catch {
      entry = { msg: line, notJson: true };
    }
    logs.push(entry);
    for (const listener of [...listeners]) listener(entry);
  };
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) addLine(line);
  });
  child.stdout!.on('end', () => {
    addLine(pending);
    pending = '';
    stdoutEnded = true;
    for (const listener of [...listeners]) listener(undefined);
  });
  const server: ServiceProcess = {
    url: '',
    child,
    logs,
    stderr: () => stderr,
    waitForLog,
    exited,
    alive: () => running,
    stop: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (running) child.kill(signal);
      return exited;
    },
  };
  return waitForLog((l) => l.msg === 'listening', { timeoutMs: 60_000, what: "The server's 'listening' line" }).then(
    (listening) => ({ ...server, url: listening.url as string }),
    (err: Error) => {
      child.kill('SIGKILL');
      throw err;
    },
  );
}
