// loadConfig: defaults, every variable, the .env file, and the messages of wrong values.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { bf16Instructions, bf16Refusal } from '../../src/server/bf16-support.js';
import { ConfigError, VARIABLES, describeVariables, loadConfig } from '../../src/server/config.js';

const cwd = mkdtempSync(path.join(os.tmpdir(), 'config-test-'));

describe('loadConfig', () => {
  it("defaults: the workshop's port 8000, models/, caches of 100 and 1000, keep-alive 30 s, batches of 8, a queue of 64", () => {
    expect(loadConfig({}, cwd)).toEqual({
      host: '127.0.0.1',
      port: 8000,
      modelDir: path.join(cwd, 'models'),
      backend: 'auto',
      precision: 'fp32',
      modelFile: undefined,
      onnxFile: undefined,
      classMappingFile: undefined,
      vocabFile: undefined,
      device: 'auto',
      threads: undefined,
      workers: 1,
      predictionCacheSize: 100,
      predictionCacheTtlSeconds: 3600,
      redisUrl: undefined,
      cacheSecret: undefined,
      reloadTimeoutMs: 120_000,
      tokenCacheSize: 1000,
      textFeatureCacheSize: 128,
      maxBatch: 8,
      maxBatchDelayMs: 0,
      maxQueue: 64,
      requestTimeoutMs: 30_000,
      maxUploadBytes: 10 * 1024 * 1024,
      maxImagePixels: 40_000_000,
      maxDecodeBytes: 256 * 1024 * 1024,
      maxLargeDecodes: 1,
      maxConcurrentUploads: 64,
      uploadTimeoutMs: 60_000,
      apiKeys: [],
      adminApiKeys: [],
      allowedHosts: ['localhost', '127.0.0.1', '::1'],
      rateLimit: 0,
      trustProxy: undefined,
      tlsCert: undefined,
      tlsKey: undefined,
      keepAliveTimeoutMs: 30_000,
      shutdownTimeoutMs: 30_000,
      logLevel: 'info',
      envFile: undefined,
    });
  });

  it('reads every variable; paths relative to the working folder', () => {
    const config = loadConfig(
      {
        PORT: '9000',
        HOST: '0.0.0.0',
        MODEL_DIR: 'm',
        BACKEND: 'ONNX',
        PRECISION: 'AUTO',
        ONNX_MODEL_PATH: 'x.onnx',
        MODEL_PATH: '/abs/model.pt',
        CLASS_MAPPING_PATH: 'c.json',
        VOCAB_PATH: 'v.txt',
        DEVICE: 'cpu',
        THREADS: '3',
        PREDICTION_CACHE_SIZE: '0',
        TOKEN_CACHE_SIZE: '5',
        MAX_UPLOAD_MB: '0.5',
        MAX_IMAGE_PIXELS: '1000',
        KEEP_ALIVE_TIMEOUT: '5',
        SHUTDOWN_TIMEOUT: '2.5',
        LOG_LEVEL: 'DEBUG',
        TEXT_FEATURE_CACHE_SIZE: '0',
        MAX_BATCH: '1',
        MAX_BATCH_DELAY_MS: '2.5',
        MAX_QUEUE: '3',
        REQUEST_TIMEOUT_MS: '1500',
      },
      cwd,
    );
    expect(config).toMatchObject({
      port: 9000,
      host: '0.0.0.0',
      modelDir: path.join(cwd, 'm'),
      modelFile: '/abs/model.pt',
      classMappingFile: path.join(cwd, 'c.json'),
      vocabFile: path.join(cwd, 'v.txt'),
      backend: 'onnx',
      precision: 'auto',
      onnxFile: path.join(cwd, 'x.onnx'),
      device: 'cpu',
      threads: 3,
      predictionCacheSize: 0,
      tokenCacheSize: 5,
      maxUploadBytes: 512 * 1024,
      maxImagePixels: 1000,
      keepAliveTimeoutMs: 5000,
      shutdownTimeoutMs: 2500,
      logLevel: 'debug',
      textFeatureCacheSize: 0,
      maxBatch: 1,
      maxBatchDelayMs: 2.5,
      maxQueue: 3,
      requestTimeoutMs: 1500,
    });
  });

  it('API keys: comma-separated, at least 16 characters, never repeated in a message; hosts; HTTPS needs both files', () => {
    const config = loadConfig(
      {
        API_KEYS: ' aaaaaaaaaaaaaaaa , bbbbbbbbbbbbbbbb,aaaaaaaaaaaaaaaa',
        ADMIN_API_KEYS: 'cccccccccccccccc',
        ALLOWED_HOSTS: 'Example.COM,[::1]',
        HOST: '10.0.0.5',
      },
      cwd,
    );
    expect(config.apiKeys).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    expect(config.adminApiKeys).toEqual(['cccccccccccccccc']);
    expect(config.allowedHosts).toEqual(['example.com', '::1', '10.0.0.5']);
    expect(loadConfig({ ALLOWED_HOSTS: '*' }, cwd).allowedHosts).toEqual(['*']);
    expect(loadConfig({ HOST: '0.0.0.0' }, cwd).allowedHosts).toEqual(['localhost', '127.0.0.1', '::1']);
    const weak = (() => {
      try {
        loadConfig({ API_KEYS: 'aaaaaaaaaaaaaaaa,short-secret' }, cwd);
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    expect(weak).toBe('Expected comma-separated keys of at least 16 characters without spaces for API_KEYS but key 2 of 2 is not');
    expect(weak).not.toContain('short-secret');
    expect(() => loadConfig({ TLS_CERT: '/etc/hostname' }, cwd)).toThrow('HTTPS needs both TLS_CERT and TLS_KEY, but only TLS_CERT is set');
    expect(() => loadConfig({ TLS_CERT: '/nope.pem', TLS_KEY: '/etc/hostname' }, cwd)).toThrow('TLS_CERT names /nope.pem, which does not exist');
  });

  it('DEVICE takes cuda:N', () => {
    expect(loadConfig({ DEVICE: 'CUDA:1' }, cwd).device).toBe('cuda:1');
  });

  it('empty values count as unset', () => {
    expect(loadConfig({ PORT: '', THREADS: ' ' }, cwd)).toMatchObject({ port: 8000, threads: undefined });
  });

  it('wrong values: a ConfigError naming the variable, what it expects and the value', () => {
    const cases: [Record<string, string>, string][] = [
      [{ PORT: 'abc' }, "Expected an integer from 0 to 65535 for PORT but received 'abc'"],
      [{ PORT: '70000' }, "Expected an integer from 0 to 65535 for PORT but received '70000'"],
      [{ THREADS: '0' }, "Expected an integer from 1 to 1024 for THREADS but received '0'"],
      [{ THREADS: '1.5' }, "Expected an integer from 1 to 1024 for THREADS but received '1.5'"],
      [{ DEVICE: 'tpu' }, "Expected auto, cpu, cuda or cuda:N for DEVICE but received 'tpu'"],
      [{ MAX_UPLOAD_MB: '-1' }, "Expected a number from 0.001 to 1024 for MAX_UPLOAD_MB but received '-1'"],
      [{ KEEP_ALIVE_TIMEOUT: 'soon' }, "Expected an integer from 1 to 3600 for KEEP_ALIVE_TIMEOUT but received 'soon'"],
      [{ KEEP_ALIVE_TIMEOUT: '0' }, "Expected an integer from 1 to 3600 for KEEP_ALIVE_TIMEOUT but received '0'"],
      [{ KEEP_ALIVE_TIMEOUT: '0.5' }, "Expected an integer from 1 to 3600 for KEEP_ALIVE_TIMEOUT but received '0.5'"],
      [{ BACKEND: 'tensorflow' }, "Expected auto, torch or onnx for BACKEND but received 'tensorflow'"],
      [{ MAX_BATCH: '0' }, "Expected an integer from 1 to 256 for MAX_BATCH but received '0'"],
      [{ MAX_QUEUE: 'many' }, "Expected an integer from 1 to 100000 for MAX_QUEUE but received 'many'"],
      [{ REQUEST_TIMEOUT_MS: '0' }, "Expected an integer from 1 to 3600000 for REQUEST_TIMEOUT_MS but received '0'"],
      [{ MAX_BATCH_DELAY_MS: '-1' }, "Expected a number from 0 to 10000 for MAX_BATCH_DELAY_MS but received '-1'"],
      [{ TEXT_FEATURE_CACHE_SIZE: '-5' }, "Expected an integer from 0 to 1000000 for TEXT_FEATURE_CACHE_SIZE but received '-5'"],
      [{ BACKEND: 'onnx', DEVICE: 'cuda' }, "BACKEND=onnx runs on the CPU (onnxruntime-node's CPU build) but DEVICE is 'cuda': use BACKEND=torch for CUDA"],
      [{ LOG_LEVEL: 'loud' }, "Expected one of fatal, error, warn, info, debug, trace, silent for LOG_LEVEL but received 'loud'"],
      [{ REDIS_URL: 'http://user:secret@host' }, 'Expected a URL like redis://host:6379 (or rediss:// for TLS) for REDIS_URL but received something else'],
      [{ WORKERS: '0' }, "Expected an integer from 1 to 64 for WORKERS but received '0'"],
      [{ PRECISION: 'fp16' }, "Expected fp32, int8 or auto for PRECISION but received 'fp16'"],
      [
        { PRECISION: 'int8', BACKEND: 'torch' },
        "PRECISION=int8 runs the int8 variant (text_encoder.int8.onnx + head.int8.onnx) with ONNX Runtime, but BACKEND is 'torch': use BACKEND=onnx or auto, or PRECISION=fp32 for LibTorch",
      ],
      [
        { PRECISION: 'int8', DEVICE: 'cuda:0' },
        "PRECISION=int8 runs on the CPU (ONNX Runtime) but DEVICE is 'cuda:0': use DEVICE=cpu, or PRECISION=fp32 for CUDA",
      ],
      [
        { PRECISION: 'int8', ONNX_MODEL_PATH: 'x.onnx' },
        "PRECISION=int8 runs the model folder's two int8 parts (text_encoder.int8.onnx + head.int8.onnx), not a whole model: leave MODEL_PATH and ONNX_MODEL_PATH unset, or use PRECISION=fp32",
      ],
    ];
    for (const [env, message] of cases) {
      expect(() => loadConfig(env, cwd)).toThrow(new ConfigError(message));
    }
  });

  it('PRECISION=bf16 is refused with the reason for this CPU: no bf16 instructions, or not measured where there are', () => {
    expect(() => loadConfig({ PRECISION: 'bf16' }, cwd)).toThrow(/^PRECISION=bf16 is not offered.*use int8 or fp32$/);
    const avx2 = 'processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2 fma\n';
    const amx = 'processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n';
    expect(bf16Instructions(avx2)).toEqual({ cpu: 'AMD EPYC 7B13', flags: [] });
    expect(bf16Instructions(amx)).toEqual({ cpu: 'Intel(R) Xeon(R) Platinum 8481C', flags: ['avx512_bf16', 'amx_bf16'] });
    expect(bf16Refusal(avx2)).toBe(
      'PRECISION=bf16 is not offered: AMD EPYC 7B13 has no bf16 instructions (avx512_bf16 or amx_bf16), so bf16 would be emulated and ' +
        'slower than fp32 (npm run bench:bf16 measures it); use int8 or fp32',
    );
    expect(bf16Refusal(amx)).toMatch(/^PRECISION=bf16 is not offered yet: Intel\(R\) Xeon\(R\) Platinum 8481C has avx512_bf16 and amx_bf16, but/);
  });

  it('a .env file in the working folder is read; the environment wins over it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'config-env-'));
    writeFileSync(path.join(dir, '.env'), '# comment\nPORT=8100\nPREDICTION_CACHE_SIZE="7"\nLOG_LEVEL=warn\n');
    expect(loadConfig({}, dir)).toMatchObject({ port: 8100, predictionCacheSize: 7, logLevel: 'warn', envFile: path.join(dir, '.env') });
    expect(loadConfig({ PORT: '8200' }, dir)).toMatchObject({ port: 8200, predictionCacheSize: 7 });
  });

  it('ENV_FILE names another file; a missing one is an error, and so is a wrong value in it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'config-envfile-'));
    writeFileSync(path.join(dir, 'prod.env'), 'THREADS=abc\n');
    expect(() => loadConfig({ ENV_FILE: 'prod.env' }, dir)).toThrow("Expected an integer from 1 to 1024 for THREADS but received 'abc'");
    expect(() => loadConfig({ ENV_FILE: 'missing.env' }, dir)).toThrow(`ENV_FILE names ${path.join(dir, 'missing.env')}, which does not exist`);
  });

  it('--help lists every variable that loadConfig reads', () => {
    const help = describeVariables();
    for (const v of VARIABLES) expect(help).toContain(v.name);
    expect(VARIABLES.map((v) => v.name).sort()).toEqual(
      [
        'PORT',
        'HOST',
        'MODEL_DIR',
        'BACKEND',
        'PRECISION',
        'ONNX_MODEL_PATH',
        'MODEL_PATH',
        'CLASS_MAPPING_PATH',
        'VOCAB_PATH',
        'DEVICE',
        'THREADS',
        'PREDICTION_CACHE_SIZE',
        'TOKEN_CACHE_SIZE',
        'MAX_UPLOAD_MB',
        'MAX_IMAGE_PIXELS',
        'KEEP_ALIVE_TIMEOUT',
        'SHUTDOWN_TIMEOUT',
        'LOG_LEVEL',
        'ENV_FILE',
        'TEXT_FEATURE_CACHE_SIZE',
        'MAX_BATCH',
        'MAX_BATCH_DELAY_MS',
        'MAX_QUEUE',
        'REQUEST_TIMEOUT_MS',
        'MAX_DECODE_MB',
        'MAX_LARGE_DECODES',
        'MAX_CONCURRENT_UPLOADS',
        'UPLOAD_TIMEOUT',
        'API_KEYS',
        'ADMIN_API_KEYS',
        'ALLOWED_HOSTS',
        'RATE_LIMIT',
        'TLS_CERT',
        'TLS_KEY',
        'REDIS_URL',
        'CACHE_SECRET',
        'RELOAD_TIMEOUT',
        'PREDICTION_CACHE_TTL',
        'WORKERS',
        'TRUST_PROXY',
      ].sort(),
    );
  });

  it("docs/configuration.md's table names every variable", () => {
    const table = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const v of VARIABLES) expect(table, v.name).toContain(`\`${v.name}\``);
  });
});
