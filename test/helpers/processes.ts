// Service processes that a test file starts, and temporary folders, all tracked so that the file's afterAll
// kills and removes whatever a test left behind:
//   const tracked = trackProcesses('lifecycle-');
//   afterAll(() => tracked.cleanup());
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { DEFAULT_MODEL_DIR, type LogEntry, spawnServer, startServer, type TestServer } from './server.js';

/** The files of a model folder that the service reads (the whole-model layout). */
export const MODEL_FILES = ['best_model.pth', 'class_mapping.json', 'vocab.txt', 'model.json'];

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface TrackedProcesses {
  /** A new temporary folder (removed by cleanup()). */
  tempDir(prefix?: string): string;
  /** A copy of the default model folder (only the files the service reads), in a temporary folder. */
  copyModelDir(): string;
  /** startServer(env), tracked. */
  serve(env?: Record<string, string | undefined>): Promise<TestServer>;
  /** Runs the service (src/server/main.ts, as `npm start`) to its exit (SIGKILL after 60 s). */
  runToExit(env?: Record<string, string | undefined>, args?: string[]): Promise<Run>;
  /** A child process started otherwise, to be killed at cleanup() if still running. */
  track(child: ChildProcess): ChildProcess;
  /** Kills every tracked process still running, removes every temporary folder. */
  cleanup(): void;
}

export function trackProcesses(prefix = 'test-'): TrackedProcesses {
  const children = new Set<ChildProcess>();
  const tempDirs: string[] = [];
  const track = (child: ChildProcess): ChildProcess => {
    children.add(child);
    return child;
  };
  const tempDir = (folderPrefix = prefix): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), folderPrefix));
    tempDirs.push(dir);
    return dir;
  };
  return {
    tempDir,
    copyModelDir() {
      const dir = tempDir(`${prefix}model-`);
      for (const file of MODEL_FILES) copyFileSync(path.join(DEFAULT_MODEL_DIR, file), path.join(dir, file));
      return dir;
    },
    async serve(env = {}) {
      const server = await startServer(env);
      track(server.child);
      return server;
    },
    runToExit(env = {}, args = []) {
      const child = track(spawnServer(env, args));
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
      });
    },
    track,
    cleanup() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Stops a server that a test left running: SIGTERM, then SIGKILL if it has not exited within 20 s. */
export async function shutdown(server: TestServer | undefined): Promise<void> {
  if (!server?.alive()) return;
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 20_000);
  await server.stop('SIGTERM');
  clearTimeout(timer);
}

/** server.waitForLog(match), with a timeout (the method takes more options: `since`, `what`). */
export function waitForLog(server: TestServer, match: (entry: LogEntry) => boolean, timeoutMs = 30_000): Promise<LogEntry> {
  return server.waitForLog(match, { timeoutMs });
}

export function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** Opens a new TCP connection to the server: resolves 'connected' or the error code (ECONNREFUSED, ...). */
export function tryConnect(url: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(portOf(url), new URL(url).hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}
