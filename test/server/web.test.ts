// The web page at `/` in a real browser: Debian's Chromium driven by playwright-core, against a real service
// (src/server/main.ts in its own process, the default model). What the page shows is compared with what a
// direct POST /predict of the same bytes and text answers, never with hard-coded classes.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { getJson, predict, startServer, type TestServer } from '../helpers/server.js';
import { sharedPhotos } from '../helpers/torchvision.js';

// The functions given to page.evaluate run in the page, but are type-checked with the project's Node-only
// libs: the few browser globals they use are declared here, loosely, for this module only.
declare const window: any;
declare const document: any;
declare const DataTransfer: any;
declare const DragEvent: any;

const CHROMIUM = process.env.TORCH_NODE_CHROMIUM || '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const TITLE = HAVE_CHROMIUM
  ? 'the web page at / (Chromium)'
  : `the web page at / — SKIPPED: no Chromium at ${CHROMIUM}; install it with ` +
    '`apt-get install --no-install-recommends chromium` (scripts/setup.sh does), or set TORCH_NODE_CHROMIUM';

interface Photo {
  name: string;
  bytes: Buffer;
}

interface Bar {
  name: string;
  confidence: string;
  /** The bar's CSS width, in percent. */
  width: number;
}

interface ApiPrediction {
  class_name: string;
  probability: number;
  confidence: string;
}

/** Two different real photos: the shared samples, or, without ../shared/data, JPEGs made with sharp. */
async function photos(): Promise<[Photo, Photo]> {
  const { samples } = sharedPhotos();
  if (samples.length >= 2) {
    const [a, b] = samples;
    return [
      { name: path.basename(a), bytes: readFileSync(a) },
      { name: path.basename(b), bytes: readFileSync(b) },
    ];
  }
  const made = async (name: string, r: number, g: number, b: number): Promise<Photo> => {
    // A gradient with a disc in it, so that the photo is not flat.
    const svg = Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="360"><defs><linearGradient id="g">` +
        `<stop offset="0" stop-color="rgb(${r},${g},${b})"/><stop offset="1" stop-color="rgb(${b},${r},${g})"/>` +
        `</linearGradient></defs><rect width="480" height="360" fill="url(#g)"/>` +
        `<circle cx="240" cy="180" r="110" fill="rgb(${g},${b},${r})"/></svg>`,
    );
    return { name, bytes: await sharp(svg).jpeg({ quality: 90 }).toBuffer() };
  };
  return Promise.all([made('made-a.jpg', 200, 60, 30), made('made-b.jpg', 30, 160, 90)]);
}

/** The bars the page shows, once it shows some. */
async function bars(page: Page): Promise<Bar[]> {
  await page.locator('[data-testid="prediction"]').first().waitFor();
  return page.$$eval('[data-testid="prediction"]', (items) =>
    items.map((item) => ({
      name: item.querySelector('[data-testid="class-name"]')!.textContent!,
      confidence: item.querySelector('[data-testid="confidence"]')!.textContent!,
      width: parseFloat((item.querySelector('[data-testid="bar"]') as { style: { width: string } }).style.width),
    })),
  );
}

function expectBarsMatch(shown: Bar[], predictions: ApiPrediction[]): void {
  expect(predictions.length).toBeGreaterThan(0);
  expect(shown.map((b) => [b.name, b.confidence])).toEqual(predictions.map((p) => [p.class_name, p.confidence]));
  shown.forEach((bar, i) => {
    expect(bar.width).toBeCloseTo(predictions[i].probability * 100, 3);
  });
}

/**
 * Records the form of every fetch the page makes (Chromium does not expose the multipart body of a request
 * that carries a file from a file input): [name, value] pairs, a file as `file:<name>:<size>`.
 */
function recordForms(): void {
  const sent: [string, string][][] = [];
  window.sentForms = sent;
  const original: typeof fetch = window.fetch;
  window.fetch = function (this: unknown, input: Parameters<typeof fetch>[0], init?: RequestInit) {
    if (init?.body instanceof FormData) {
      sent.push([...init.body.entries()].map(([k, v]) => [k, typeof v === 'string' ? v : `file:${v.name}:${v.size}`]));
    }
    return original.call(this, input, init);
  };
}

async function lastForm(page: Page): Promise<Map<string, string>> {
  const forms = await page.evaluate((): [string, string][][] => window.sentForms);
  expect(forms.length).toBeGreaterThan(0);
  return new Map(forms.at(-1));
}

describe.skipIf(!HAVE_CHROMIUM)(TITLE, () => {
  let server: TestServer;
  let browser: Browser;
  let photoA: Photo;
  let photoB: Photo;
  const pages: Page[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // Side by side, and each kept as soon as it is there, so that afterAll ends whatever did start.
    const settled = await Promise.allSettled([
      startServer().then((s) => (server = s)),
      chromium
        .launch({
          executablePath: CHROMIUM,
          headless: true,
          args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
        })
        .then((b) => (browser = b)),
      photos().then((p) => ([photoA, photoB] = p)),
    ]);
    for (const result of settled) if (result.status === 'rejected') throw result.reason;
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  afterEach(async () => {
    await Promise.all(pages.splice(0).map((p) => p.close()));
    expect(pageErrors.splice(0)).toEqual([]);
  });

  async function open(viewport = { width: 1024, height: 800 }): Promise<Page> {
    const page = await browser.newPage({ viewport });
    pages.push(page);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      // Chromium logs every 4xx answer as "Failed to load resource"; the tests check those answers themselves.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(msg.text());
    });
    await page.addInitScript(recordForms);
    await page.goto(`${server.url}/`);
    return page;
  }

  async function chooseFile(page: Page, file: { name: string; mimeType: string; buffer: Buffer }): Promise<void> {
    await page.locator('#image-input').setInputFiles(file);
    await expect.poll(() => page.locator('#file-name').textContent()).toContain(file.name);
  }

  /** Clicks Classify and waits until the answer (bars or an error) is shown. */
  async function classify(page: Page): Promise<void> {
    await page.locator('#classify-button').click();
    await page.locator('#results[aria-busy="false"]').waitFor();
  }

  it('loads: title, heading, the docs link, its script and style, and nothing to classify yet', async () => {
    const failed: string[] = [];
    const page = await browser.newPage();
    pages.push(page);
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
    });
    page.on('requestfailed', (r) => failed.push(`failed ${r.url()}`));
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const response = await page.goto(`${server.url}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-type']).toMatch(/^text\/html/);
    await expect(page.title()).resolves.toBe('Food classifier');
    await expect(page.locator('h1').textContent()).resolves.toBe('Food classifier');

    const docs = page.locator('#docs-link');
    await expect(docs.getAttribute('href')).resolves.toBe('/docs');
    // The docs page fetches /openapi.json: going back before it has arrived would cancel it (a failed request).
    const documentLoaded = page.waitForResponse((r) => r.url() === `${server.url}/openapi.json`).then((r) => r.finished());
    await docs.click();
    await page.waitForURL(`${server.url}/docs`);
    expect(await page.title()).toMatch(/Swagger UI/);
    await documentLoaded;
    await page.goBack();

    await expect(page.locator('#classify-button').isDisabled()).resolves.toBe(true);
    await expect(page.locator('#text-input').getAttribute('placeholder')).resolves.toBe('Image of food');
    await expect(page.locator('label[for="text-input"]').count()).resolves.toBe(1);
    await expect(page.locator('label[for="image-input"]').count()).resolves.toBe(1);
    await expect(page.locator('#results').getAttribute('aria-live')).resolves.toBe('polite');
    await expect(page.locator('[data-testid="prediction"]').count()).resolves.toBe(0);
    expect(failed.filter((f) => !f.includes('favicon'))).toEqual([]);
  });

  it('classifies a chosen photo as POST /predict does, without a text field, then answers the repeat from the cache', async () => {
    const page = await open();
    await chooseFile(page, { name: photoA.name, mimeType: 'image/jpeg', buffer: photoA.bytes });
    await page.waitForFunction(() => {
      const img = document.querySelector('#preview');
      return img !== null && !img.hidden && img.complete && img.naturalWidth > 0;
    });
    await expect(page.locator('#classify-button').isEnabled()).resolves.toBe(true);

    await classify(page);
    const form = await lastForm(page);
    expect([...form.keys()]).toEqual(['image']);
    expect(form.get('image')).toBe(`file:${photoA.name}:${photoA.bytes.length}`);

    const first = await bars(page);
    await expect(page.locator('#cache-badge').isVisible()).resolves.toBe(false);
    await expect(page.locator('#error').isVisible()).resolves.toBe(false);

    // The same bytes, no text: the API's answer, from the cache the page's request filled.
    const api = await predict(server.url, photoA.bytes);
    expect(api.status).toBe(200);
    expect(api.body.cache_hit).toBe(true);
    expectBarsMatch(first, api.body.predictions);
    const classes = await getJson(server.url, '/classes');
    expect(first.length).toBe(Math.min(5, classes.body.classes.length));

    await classify(page);
    await expect(page.locator('#cache-badge').isVisible()).resolves.toBe(true);
    await expect(page.locator('#cache-badge').textContent()).resolves.toBe('cached');
    expectBarsMatch(await bars(page), api.body.predictions);
  });

  it('classifies a photo dropped on the drop zone, and fits a phone-sized screen', async () => {
    const page = await open({ width: 360, height: 740 });
    await page.evaluate(
      ({ name, base64 }) => {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: 'image/jpeg' }));
        const zone = document.getElementById('drop-zone')!;
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
      },
      { name: photoB.name, base64: photoB.bytes.toString('base64') },
    );
    await expect.poll(() => page.locator('#file-name').textContent()).toContain(photoB.name);
    await page.waitForFunction(() => (document.querySelector('#preview')?.naturalWidth ?? 0) > 0);
    await expect(page.locator('#drop-zone').getAttribute('class')).resolves.not.toContain('dragover');

    await classify(page);
    const shown = await bars(page);
    const api = await predict(server.url, photoB.bytes);
    expect(api.status).toBe(200);
    expect(api.body.cache_hit).toBe(true);
    expectBarsMatch(shown, api.body.predictions);
    await expect(page.locator('#cache-badge').isVisible()).resolves.toBe(false);

    const overflow = await page.evaluate((): number => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
  });

  it('sends the text typed in the text field, and shows the answer for that text', async () => {
    const text = 'A plate of sushi from the web page test';
    const page = await open();
    await chooseFile(page, { name: photoA.name, mimeType: 'image/jpeg', buffer: photoA.bytes });
    await page.locator('#text-input').fill(text);
    await classify(page);
    expect(await lastForm(page)).toEqual(
      new Map([
        ['image', `file:${photoA.name}:${photoA.bytes.length}`],
        ['text', text],
      ]),
    );
    const shown = await bars(page);

    const api = await predict(server.url, photoA.bytes, text);
    expect(api.status).toBe(200);
    expect(api.body.cache_hit).toBe(true); // the page's request was this image with this text
    expectBarsMatch(shown, api.body.predictions);
    await expect(page.locator('#cache-badge').isVisible()).resolves.toBe(false);
  });

  it("shows the API's 400 for a file that is not an image", async () => {
    const file = { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('These are notes, not a photo.\n') };
    const api = await predict(server.url, file.buffer, undefined, file.name);
    expect(api.status).toBe(400);
    expect(typeof api.body.detail).toBe('string');

    const page = await open();
    await chooseFile(page, file);
    await page.locator('#preview-note').waitFor();
    await classify(page);
    const error = page.locator('#error');
    await expect(error.isVisible()).resolves.toBe(true);
    await expect(error.getAttribute('role')).resolves.toBe('alert');
    await expect(error.textContent()).resolves.toBe(`Error 400: ${api.body.detail}`);
    await expect(page.locator('[data-testid="prediction"]').count()).resolves.toBe(0);
    await expect(page.locator('#cache-badge').isVisible()).resolves.toBe(false);
  });

  it("is busy while it waits, and lists a 422's validation errors", async () => {
    const page = await open();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/predict', async (route) => {
      await held;
      await route.fulfill({
        status: 422,
        json: { detail: [{ type: 'missing', loc: ['body', 'image'], msg: 'Field required', input: null }] },
      });
    });
    await chooseFile(page, { name: photoA.name, mimeType: 'image/jpeg', buffer: photoA.bytes });
    await page.locator('#classify-button').click();
    await page.locator('#results[aria-busy="true"]').waitFor();
    await expect(page.locator('#classify-button').isDisabled()).resolves.toBe(true);
    await expect(page.locator('#classify-button').textContent()).resolves.toContain('Classifying');
    release();
    await page.locator('#results[aria-busy="false"]').waitFor();
    await expect(page.locator('#error').textContent()).resolves.toBe('Error 422: image: Field required');
    await expect(page.locator('#classify-button').isEnabled()).resolves.toBe(true);
  });
});
