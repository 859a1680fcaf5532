// The service's configuration: environment variables, and a `.env` file beside them (the environment wins,
// as with `node --env-file`). Every value is checked once, at start, and a wrong one stops the service with
// a message that names the variable, what it expects and what it got.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';

import type { Device } from '../index.js';
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_DELAY_MS, DEFAULT_TEXT_FEATURE_CACHE_SIZE } from '../classifier/classifier.js';
import { INT8_PARTS, type Backend, type Precision } from '../classifier/model-folder.js';
import { MAX_PIXELS } from '../classifier/preprocess.js';
import { bf16Refusal } from './bf16-support.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServiceConfig {
  host: string;
  port: number;
  /** The model folder (best_model.pth, class_mapping.json, vocab.txt, model.json), absolute. */
  modelDir: string;
  /** What runs the model: LibTorch (.pth files), ONNX Runtime (.onnx files), or auto (see model-folder.ts). */
  backend: Backend | 'auto';
  /**
   * fp32 (the export's files: the workshop's answers exactly), int8 (the folder's int8 variant, ONNX Runtime),
   * or auto (int8 where model.json says it passed and is faster, and ONNX Runtime's parts run; see model-folder.ts).
   */
  precision: Precision | 'auto';
  /** Files that live elsewhere than in modelDir; undefined: the folder's. Absolute. */
  modelFile: string | undefined;
  onnxFile: string | undefined;
  classMappingFile: string | undefined;
  vocabFile: string | undefined;
  device: Device;
  /** Intra-op threads of LibTorch or ONNX Runtime; undefined: the available CPUs (divided among the workers). */
  threads: number | undefined;
  /** Worker processes (node:cluster), each with the model; 1: this process serves. */
  workers: number;
  /** With WORKERS: how long the primary waits for each worker's reload; a worker slower is reported as failed. */
  reloadTimeoutMs: number;
  predictionCacheSize: number;
  /** Seconds a cached answer lives (in Redis, and in this process). */
  predictionCacheTtlSeconds: number;
  /** Redis for the prediction cache and the rate-limit counters, shared by instances; undefined: this process. */
  redisUrl: string | undefined;
  /**
   * The key that signs the answers kept in Redis (HMAC-SHA256: their keys and their values), shared by the
   * instances; required with REDIS_URL. Never logged.
   */
  cacheSecret: string | undefined;
  tokenCacheSize: number;
  textFeatureCacheSize: number;
  maxBatch: number;
  maxBatchDelayMs: number;
  maxQueue: number;
  requestTimeoutMs: number;
  maxUploadBytes: number;
  maxImagePixels: number;
  /** The most memory one image may need to decode (bytes); larger: 400. */
  maxDecodeBytes: number;
  /** Large images (see classifier's decode lanes) decoded at once. */
  maxLargeDecodes: number;
  /** Uploads to /predict read at once (MAX_CONCURRENT_UPLOADS); the others wait, unread. */
  maxConcurrentUploads: number;
  /** Milliseconds a request (headers and body) may take to arrive; slower: 408 and the connection closed. */
  uploadTimeoutMs: number;
  /** API keys for every endpoint but /health and the pages; empty: no authentication. Never logged. */
  apiKeys: string[];
  /** The keys that may POST /reload_model; empty: any API key may (or anyone, without API_KEYS). */
  adminApiKeys: string[];
  /** Host headers accepted without keys; ['*']: any. */
  allowedHosts: string[];
  /** Requests a minute per API key (or client address); 0: no limit. */
  rateLimit: number;
  /** Express's `trust proxy`: which proxies' X-Forwarded-For to believe (the client address behind nginx). */
  trustProxy: string | number | undefined;
  /** HTTPS: PEM certificate (chain) and private key files, absolute; both or neither. */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  keepAliveTimeoutMs: number;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  /** The .env file that was read, if one was. */
  envFile: string | undefined;
}

/** One variable: its name, what it means and its default, for `--help`, docs/configuration.md and the parser. */
interface Variable {
  name: string;
  help: string;
  default: string;
}

export const VARIABLES: readonly Variable[] = [
  { name: 'PORT', default: '8000', help: 'TCP port (0: any free port)' },
  { name: 'HOST', default: '127.0.0.1', help: 'interface to listen on (0.0.0.0 or :: for every interface)' },
  { name: 'MODEL_DIR', default: 'models', help: 'model folder: best_model.pth, class_mapping.json, vocab.txt, model.json' },
  {
    name: 'BACKEND',
    default: 'auto',
    help: 'auto (ONNX Runtime on the CPU when the folder has .onnx files, LibTorch on a GPU), torch (LibTorch, .pth) or onnx (ONNX Runtime, .onnx)',
  },
  {
    name: 'PRECISION',
    default: 'fp32',
    help:
      "fp32 (the exported model, the workshop's answers), int8 (the folder's int8 variant: export_model.py --precision int8; ONNX Runtime, CPU) " +
      'or auto (int8 when model.json says it passed and is faster, else fp32); bf16 is not offered yet',
  },
  { name: 'MODEL_PATH', default: '$MODEL_DIR/best_model.pth', help: 'the TorchScript model, when not in MODEL_DIR' },
  { name: 'ONNX_MODEL_PATH', default: '$MODEL_DIR/best_model.onnx', help: 'the ONNX model, when not in MODEL_DIR' },
  { name: 'CLASS_MAPPING_PATH', default: '$MODEL_DIR/class_mapping.json', help: 'the class mapping, when not in MODEL_DIR' },
  { name: 'VOCAB_PATH', default: '$MODEL_DIR/vocab.txt', help: 'the WordPiece vocabulary, when not in MODEL_DIR' },
  { name: 'DEVICE', default: 'auto', help: 'auto (CUDA when available), cpu, cuda or cuda:N' },
  { name: 'THREADS', default: 'available CPUs / WORKERS', help: 'intra-op threads of LibTorch or ONNX Runtime' },
  { name: 'WORKERS', default: '1', help: 'worker processes (node:cluster), each with the model; a crashed one is replaced' },
  { name: 'RELOAD_TIMEOUT', default: '120', help: 'with WORKERS: seconds POST /reload_model waits for each worker to reload (slower: failed)' },
  { name: 'PREDICTION_CACHE_SIZE', default: '100', help: 'predictions kept (LRU); 0 turns the cache off' },
  { name: 'PREDICTION_CACHE_TTL', default: '3600', help: 'seconds a cached answer lives' },
  { name: 'REDIS_URL', default: 'none', help: 'redis://host:port: the prediction cache and rate limits shared by instances' },
  {
    name: 'CACHE_SECRET',
    default: 'none',
    help: 'with REDIS_URL (required): a secret of 32+ characters the instances share, signing the answers kept in Redis (openssl rand -hex 32)',
  },
  { name: 'TOKEN_CACHE_SIZE', default: '1000', help: 'tokenised texts kept (LRU); 0 turns the cache off' },
  {
    name: 'TEXT_FEATURE_CACHE_SIZE',
    default: String(DEFAULT_TEXT_FEATURE_CACHE_SIZE),
    help: 'texts whose text-encoder features are kept (LRU; 384 KiB each with BERT-base); 0: none',
  },
  { name: 'MAX_BATCH', default: String(DEFAULT_MAX_BATCH), help: 'most photos (or texts) computed by one forward' },
  { name: 'MAX_BATCH_DELAY_MS', default: String(DEFAULT_MAX_BATCH_DELAY_MS), help: 'ms a request that finds the model idle waits for others to batch with' },
  { name: 'MAX_QUEUE', default: '64', help: 'most /predict requests waiting for the model; more: 503 with Retry-After' },
  { name: 'REQUEST_TIMEOUT_MS', default: '30000', help: 'ms a /predict request may wait for the model; longer: 503' },
  { name: 'MAX_UPLOAD_MB', default: '10', help: 'largest image upload, in MiB (larger: 413)' },
  { name: 'MAX_IMAGE_PIXELS', default: String(MAX_PIXELS), help: 'largest image, width x height (larger: 400)' },
  { name: 'MAX_DECODE_MB', default: '256', help: 'most memory one image may need to decode, in MiB (more: 400)' },
  { name: 'MAX_LARGE_DECODES', default: '1', help: 'large images (over 16 megapixels, or 64 MiB to decode) decoded at once' },
  {
    name: 'MAX_CONCURRENT_UPLOADS',
    default: '64',
    help: 'uploads to /predict read at once; more wait unread (fewer: /health steadier under many long texts, less under many large photos)',
  },
  { name: 'UPLOAD_TIMEOUT', default: '60', help: 'seconds a request (headers and upload) may take to arrive (slower: 408)' },
  { name: 'API_KEYS', default: 'none', help: 'comma-separated keys (16+ characters): every endpoint but /health and the pages needs one' },
  { name: 'ADMIN_API_KEYS', default: 'none', help: 'comma-separated keys that alone may POST /reload_model' },
  {
    name: 'ALLOWED_HOSTS',
    default: 'localhost,127.0.0.1,::1',
    help: 'Host headers accepted when no API key is set (and HOST itself); * accepts any',
  },
  { name: 'RATE_LIMIT', default: '0', help: 'requests a minute per API key or client address (0: no limit; /health exempt)' },
  { name: 'TRUST_PROXY', default: 'none', help: "proxies whose X-Forwarded-For gives the client's address: loopback, a hop count, or addresses" },
  { name: 'TLS_CERT', default: 'none', help: 'PEM certificate file: serve HTTPS (with TLS_KEY)' },
  { name: 'TLS_KEY', default: 'none', help: 'PEM private key file (with TLS_CERT)' },
  { name: 'KEEP_ALIVE_TIMEOUT', default: '30', help: 'seconds an idle keep-alive connection stays open' },
  { name: 'SHUTDOWN_TIMEOUT', default: '30', help: 'seconds SIGTERM waits for requests in flight' },
  { name: 'LOG_LEVEL', default: 'info', help: LOG_LEVELS.join(', ') },
  { name: 'ENV_FILE', default: '.env', help: 'file of further variables (the environment wins)' },
];

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ERR_CONFIG';
}

type Env = Record<string, string | undefined>;

/**
 * Reads the configuration from `env` (default process.env) and the .env file it names (ENV_FILE, default
 * `.env` in `cwd`; a missing default file is fine, a missing named one is an error).
 */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): ServiceConfig {
  const envFile = findEnvFile(env, cwd);
  const merged: Env = envFile ? { ...readEnvFile(envFile), ...env } : env;
  const get = (name: string): string | undefined => {
    const value = merged[name]?.trim();
    return value === '' ? undefined : value;
  };
  const file = (name: string): string | undefined => {
    const value = get(name);
    return value === undefined ? undefined : path.resolve(cwd, value);
  };

  const port = integer(get('PORT'), 'PORT', 0, 65535) ?? 8000;
  const threads = integer(get('THREADS'), 'THREADS', 1, 1024);
  const backendName = backend(get('BACKEND'));
  const deviceName = device(get('DEVICE'));
  if (backendName === 'onnx' && deviceName !== 'auto' && deviceName !== 'cpu') {
    throw new ConfigError(`BACKEND=onnx runs on the CPU (onnxruntime-node's CPU build) but DEVICE is '${deviceName}': use BACKEND=torch for CUDA`);
  }
  const precisionName = precision(get('PRECISION'));
  if (precisionName === 'int8') checkInt8(backendName, deviceName, get('MODEL_PATH') !== undefined || get('ONNX_MODEL_PATH') !== undefined);
  return {
    host: get('HOST') ?? '127.0.0.1',
    port,
    modelDir: path.resolve(cwd, get('MODEL_DIR') ?? 'models'),
    backend: backendName,
    precision: precisionName,
    modelFile: file('MODEL_PATH'),
    onnxFile: file('ONNX_MODEL_PATH'),
    classMappingFile: file('CLASS_MAPPING_PATH'),
    vocabFile: file('VOCAB_PATH'),
    device: deviceName,
    threads,
    workers: integer(get('WORKERS'), 'WORKERS', 1, 64) ?? 1,
    reloadTimeoutMs: (number(get('RELOAD_TIMEOUT'), 'RELOAD_TIMEOUT', 0.1, 3600) ?? 120) * 1000,
    predictionCacheSize: integer(get('PREDICTION_CACHE_SIZE'), 'PREDICTION_CACHE_SIZE', 0, 1_000_000) ?? 100,
    predictionCacheTtlSeconds: integer(get('PREDICTION_CACHE_TTL'), 'PREDICTION_CACHE_TTL', 1, 365 * 86400) ?? 3600,
    redisUrl: redisUrl(get('REDIS_URL')),
    cacheSecret: cacheSecret(get('CACHE_SECRET'), get('REDIS_URL') !== undefined),
    tokenCacheSize: integer(get('TOKEN_CACHE_SIZE'), 'TOKEN_CACHE_SIZE', 0, 1_000_000) ?? 1000,
    textFeatureCacheSize: integer(get('TEXT_FEATURE_CACHE_SIZE'), 'TEXT_FEATURE_CACHE_SIZE', 0, 1_000_000) ?? DEFAULT_TEXT_FEATURE_CACHE_SIZE,
    maxBatch: integer(get('MAX_BATCH'), 'MAX_BATCH', 1, 256) ?? DEFAULT_MAX_BATCH,
    maxBatchDelayMs: number(get('MAX_BATCH_DELAY_MS'), 'MAX_BATCH_DELAY_MS', 0, 10_000) ?? DEFAULT_MAX_BATCH_DELAY_MS,
    maxQueue: integer(get('MAX_QUEUE'), 'MAX_QUEUE', 1, 100_000) ?? 64,
    requestTimeoutMs: integer(get('REQUEST_TIMEOUT_MS'), 'REQUEST_TIMEOUT_MS', 1, 3_600_000) ?? 30_000,
    maxUploadBytes: Math.round((number(get('MAX_UPLOAD_MB'), 'MAX_UPLOAD_MB', 0.001, 1024) ?? 10) * 1024 * 1024),
    maxImagePixels: integer(get('MAX_IMAGE_PIXELS'), 'MAX_IMAGE_PIXELS', 1, 2 ** 40) ?? MAX_PIXELS,
    maxDecodeBytes: Math.round((number(get('MAX_DECODE_MB'), 'MAX_DECODE_MB', 1, 65536) ?? 256) * 1024 * 1024),
    maxLargeDecodes: integer(get('MAX_LARGE_DECODES'), 'MAX_LARGE_DECODES', 1, 64) ?? 1,
    maxConcurrentUploads: integer(get('MAX_CONCURRENT_UPLOADS'), 'MAX_CONCURRENT_UPLOADS', 1, 100_000) ?? 64,
    uploadTimeoutMs: (integer(get('UPLOAD_TIMEOUT'), 'UPLOAD_TIMEOUT', 1, 3600) ?? 60) * 1000,
    ...keys(get('API_KEYS'), get('ADMIN_API_KEYS')),
    allowedHosts: hosts(get('ALLOWED_HOSTS'), get('HOST') ?? '127.0.0.1'),
    rateLimit: integer(get('RATE_LIMIT'), 'RATE_LIMIT', 0, 1_000_000) ?? 0,
    trustProxy: trustProxy(get('TRUST_PROXY')),
    ...tls(file('TLS_CERT'), file('TLS_KEY')),
    // Whole seconds, at least 1: the Keep-Alive header carries whole seconds, and 0 would mean no timeout at all.
    keepAliveTimeoutMs: (integer(get('KEEP_ALIVE_TIMEOUT'), 'KEEP_ALIVE_TIMEOUT', 1, 3600) ?? 30) * 1000,
    shutdownTimeoutMs: (number(get('SHUTDOWN_TIMEOUT'), 'SHUTDOWN_TIMEOUT', 0, 3600) ?? 30) * 1000,
    logLevel: logLevel(get('LOG_LEVEL')),
    envFile,
  };
}

/** Express's trust proxy: a hop count, or names and addresses (loopback, linklocal, uniquelocal, IPs, CIDRs). */
function trustProxy(value: string | undefined): string | number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  if (!/^[\w.:/, -]+$/.test(value)) throw new ConfigError(`Expected a hop count, loopback, or addresses for TRUST_PROXY ${received(value)}`);
  return value;
}

function redisUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || !url.hostname) {
    // The value may hold a password: not repeated.
    throw new ConfigError('Expected a URL like redis://host:6379 (or rediss:// for TLS) for REDIS_URL but received something else');
  }
  return value;
}

const MIN_CACHE_SECRET_LENGTH = 32;

/**
 * CACHE_SECRET: required with REDIS_URL. Without it, anyone who can write to Redis could plant answers at keys
 * computed from public data (the model's files, a photo), to be served as this service's.
 */
function cacheSecret(value: string | undefined, withRedis: boolean): string | undefined {
  const make = 'make one with `openssl rand -hex 32` and give every instance the same';
  if (value === undefined) {
    if (!withRedis) return undefined;
    throw new ConfigError(
      `REDIS_URL is set but CACHE_SECRET is not: the answers shared in Redis are signed with a secret of at least ${MIN_CACHE_SECRET_LENGTH} characters that the instances share; ${make}`,
    );
  }
  // The message never repeats the secret.
  if (value.length < MIN_CACHE_SECRET_LENGTH || /\s/.test(value)) {
    throw new ConfigError(
      `Expected at least ${MIN_CACHE_SECRET_LENGTH} characters without spaces for CACHE_SECRET but received ${value.length} characters${/\s/.test(value) ? ' with spaces' : ''}; ${make}`,
    );
  }
  return value;
}

const MIN_KEY_LENGTH = 16;

function keyList(value: string | undefined, name: string): string[] {
  if (value === undefined) return [];
  const list = value.split(',').map((k) => k.trim());
  list.forEach((key, i) => {
    // The message never repeats a key: it may be a real one with a typo.
    if (key.length < MIN_KEY_LENGTH || /\s/.test(key)) {
      throw new ConfigError(
        `Expected comma-separated keys of at least ${MIN_KEY_LENGTH} characters without spaces for ${name} but key ${i + 1} of ${list.length} is not`,
      );
    }
  });
  return [...new Set(list)];
}

function keys(apiKeys: string | undefined, adminKeys: string | undefined): { apiKeys: string[]; adminApiKeys: string[] } {
  return { apiKeys: keyList(apiKeys, 'API_KEYS'), adminApiKeys: keyList(adminKeys, 'ADMIN_API_KEYS') };
}

/** ALLOWED_HOSTS, lower case, without ports; HOST is added when it names one interface. */
function hosts(value: string | undefined, host: string): string[] {
  const list = (value ?? 'localhost,127.0.0.1,::1').split(',').map((h) =>
    h
      .trim()
      .toLowerCase()
      .replace(/^\[(.*)\]$/, '$1'),
  );
  if (list.some((h) => h === '')) throw new ConfigError(`Expected comma-separated host names for ALLOWED_HOSTS ${received(value ?? '')}`);
  if (list.includes('*')) return ['*'];
  const own = host.toLowerCase();
  if (own !== '0.0.0.0' && own !== '::' && !list.includes(own)) list.push(own);
  return list;
}

function tls(cert: string | undefined, key: string | undefined): { tlsCert: string | undefined; tlsKey: string | undefined } {
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(`HTTPS needs both TLS_CERT and TLS_KEY, but only ${cert ? 'TLS_CERT' : 'TLS_KEY'} is set`);
  }
  for (const [name, f] of [
    ['TLS_CERT', cert],
    ['TLS_KEY', key],
  ] as const) {
    if (f !== undefined && !existsSync(f)) throw new ConfigError(`${name} names ${f}, which does not exist`);
  }
  return { tlsCert: cert, tlsKey: key };
}

function findEnvFile(env: Env, cwd: string): string | undefined {
  const named = env.ENV_FILE?.trim();
  if (named) {
    const file = path.resolve(cwd, named);
    if (!existsSync(file)) throw new ConfigError(`ENV_FILE names ${file}, which does not exist`);
    return file;
  }
  const file = path.join(cwd, '.env');
  return existsSync(file) ? file : undefined;
}

function readEnvFile(file: string): Env {
  try {
    return parseEnv(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Cannot read the environment file ${file}: ${(err as Error).message}`);
  }
}

function received(value: string): string {
  return `but received '${value}'`;
}

function number(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`Expected a number from ${min} to ${max} for ${name} ${received(value)}`);
  }
  return n;
}

function integer(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new ConfigError(`Expected an integer from ${min} to ${max} for ${name} ${received(value)}`);
  }
  return n;
}

function device(value: string | undefined): Device {
  if (value === undefined) return 'auto';
  const lower = value.toLowerCase();
  if (lower === 'auto' || lower === 'cpu' || lower === 'cuda' || /^cuda:\d+$/.test(lower)) return lower as Device;
  throw new ConfigError(`Expected auto, cpu, cuda or cuda:N for DEVICE ${received(value)}`);
}

function backend(value: string | undefined): Backend | 'auto' {
  if (value === undefined) return 'auto';
  const lower = value.toLowerCase();
  if (lower === 'auto' || lower === 'torch' || lower === 'onnx') return lower;
  throw new ConfigError(`Expected auto, torch or onnx for BACKEND ${received(value)}`);
}

function precision(value: string | undefined): Precision | 'auto' {
  if (value === undefined) return 'fp32';
  const lower = value.toLowerCase();
  if (lower === 'fp32' || lower === 'int8' || lower === 'auto') return lower;
  if (lower === 'bf16') throw new ConfigError(bf16Refusal());
  throw new ConfigError(`Expected fp32, int8 or auto for PRECISION ${received(value)}`);
}

/** PRECISION=int8 runs the folder's two int8 ONNX parts with ONNX Runtime, on the CPU: nothing else will do. */
function checkInt8(backendName: Backend | 'auto', deviceName: Device, wholeModelNamed: boolean): void {
  const files = `${INT8_PARTS.textEncoder} + ${INT8_PARTS.head}`;
  if (backendName === 'torch') {
    throw new ConfigError(
      `PRECISION=int8 runs the int8 variant (${files}) with ONNX Runtime, but BACKEND is 'torch': use BACKEND=onnx or auto, or PRECISION=fp32 for LibTorch`,
    );
  }
  if (deviceName !== 'auto' && deviceName !== 'cpu') {
    throw new ConfigError(`PRECISION=int8 runs on the CPU (ONNX Runtime) but DEVICE is '${deviceName}': use DEVICE=cpu, or PRECISION=fp32 for CUDA`);
  }
  if (wholeModelNamed) {
    throw new ConfigError(
      `PRECISION=int8 runs the model folder's two int8 parts (${files}), not a whole model: leave MODEL_PATH and ONNX_MODEL_PATH unset, or use PRECISION=fp32`,
    );
  }
}

function logLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'info';
  const lower = value.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(lower)) return lower as LogLevel;
  throw new ConfigError(`Expected one of ${LOG_LEVELS.join(', ')} for LOG_LEVEL ${received(value)}`);
}

/** The variables as `--help` prints them. */
export function describeVariables(): string {
  const width = Math.max(...VARIABLES.map((v) => v.name.length));
  return VARIABLES.map((v) => `  ${v.name.padEnd(width)}  ${v.help} (default: ${v.default})`).join('\n');
}
