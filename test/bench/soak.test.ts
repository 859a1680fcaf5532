// The soak's 60-second version (the 10-minute one is `npm run soak`): the built service (dist/) under good
// uploads, bad inputs and a reload every 5 s. No good request may fail, no bad input may get a 5xx or no
// answer, every reload succeeds, the service stays up and stops cleanly; RSS may not climb fast (a minute
// cannot tell the 10-minute run's 5 % from noise: the limit here is 25 %, which a leak per request passes).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { REPO } from '../helpers/server.js';

const dist = path.join(REPO, 'dist', 'server', 'main.js');

describe.skipIf(!existsSync(dist))('soak, 60 seconds (runs dist/: skipped until `npm run build:ts` made it)', () => {
  it('no failed good request, no 5xx, every reload succeeds, RSS does not climb fast', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/soak.ts', '--seconds', '60', '--reload-every', '5', '--rss-limit', '0.25'], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 240_000,
    });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    expect(line.startsWith('{'), `no result line; stderr:\n${r.stderr}`).toBe(true);
    const result = JSON.parse(line);
    console.log(`${r.stderr.trim().split('\n').at(-1)}`);
    expect(result.good_requests).toBeGreaterThan(100);
    expect(result.good_statuses, JSON.stringify(result.error_logs)).toEqual({ 200: result.good_requests });
    for (const [name, statuses] of Object.entries(result.bad_inputs as Record<string, Record<string, number>>)) {
      for (const status of Object.keys(statuses)) expect(Number(status), name).toBeGreaterThanOrEqual(400);
      for (const status of Object.keys(statuses)) expect(Number(status), name).toBeLessThan(500);
    }
    // a reload every 5 s, each waited for: at most 11 in a minute, fewer when reloads are slow on busy cores
    expect(result.reloads).toBeGreaterThanOrEqual(5);
    expect(result.reload_failures).toBe(0);
    expect(result.died_during_run).toBe(false);
    expect(result.exit).toEqual({ code: 0, signal: null });
    expect(result.rss_growth).toBeLessThan(0.25);
    expect(result.ok).toBe(true);
    expect(r.status).toBe(0);
  }, 300_000);
});
