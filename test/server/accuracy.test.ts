// The demo model's accuracy through the running service, as a user meets it: every validation photo of
// ../shared/data/food/val posted to /predict with the workshop's text, the top answer compared with the photo's
// folder. The targets of models/MODEL_CARD.md: at least 0.92 overall and 0.85 on each class.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { predict, type TestServer, useServers } from '../helpers/server.js';
import { SHARED_DATA } from '../helpers/torchvision.js';

const VAL = path.join(SHARED_DATA, 'food', 'val');
const HAVE_VAL = existsSync(VAL);
if (!HAVE_VAL) console.warn(`[accuracy.test] ${VAL} is absent: the demo model's accuracy over HTTP is not measured`);

const start = useServers();
let server: TestServer;
beforeAll(async () => {
  if (HAVE_VAL) server = await start();
});

describe.skipIf(!HAVE_VAL)('the demo model through the service', () => {
  it('is right on at least 92 % of the validation photos, and on at least 85 % of each class', async () => {
    const right: Record<string, [number, number]> = {};
    for (const cls of readdirSync(VAL).sort()) {
      right[cls] = [0, 0];
      for (const file of readdirSync(path.join(VAL, cls)).sort()) {
        const res = await predict(server.url, readFileSync(path.join(VAL, cls, file)), 'Image of food');
        expect(res.status).toBe(200);
        right[cls][1]++;
        if (res.body.predictions[0].class_name === cls) right[cls][0]++;
      }
    }
    const [hits, total] = Object.values(right).reduce(([a, b], [c, d]) => [a + c, b + d], [0, 0]);
    console.log(
      `[accuracy.test] ${hits}/${total} = ${(hits / total).toFixed(3)}; ${Object.entries(right)
        .map(([c, [h, n]]) => `${c} ${h}/${n}`)
        .join(', ')}`,
    );
    expect(total).toBe(75);
    expect(hits / total).toBeGreaterThanOrEqual(0.92);
    for (const [cls, [h, n]] of Object.entries(right)) expect(h / n, cls).toBeGreaterThanOrEqual(0.85);
  }, 120_000);
});
