// Runs one of the study's measuring processes (workshop_baseline.py, latency-node.ts, load-client.ts), which
// print their result as one JSON line last.
import { spawn } from 'node:child_process';
import path from 'node:path';

export function runJson<T>(command: string, argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`${path.basename(command)} ${argv.slice(0, 3).join(' ')} exited with ${code}: ${stderr.slice(-1500)}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${command}: no JSON line: ${stdout.slice(-500)} ${stderr.slice(-500)}`));
      }
    });
  });
}
