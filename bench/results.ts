// The shape of `npm run bench`'s results (bench/results/*.json), and the statistics of a list of times.
export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
}

export interface LatencyRow extends Stats {
  model: 'demo' | 'full';
  batch: number;
  threads: number;
  /** e.g. "addon from Node, LibTorch 1.13 (Debian)" */
  runner: string;
  kind: 'cpp' | 'addon' | 'onnx' | 'onnx-main' | 'python';
  /** debian, torch2 or onnx */
  stack: string;
  version: string;
  /** p50 / the p50 of the C++ floor on the same LibTorch (ONNX Runtime: Debian's LibTorch). */
  vs_floor?: number;
  /** p50 / the p50 of the C++ floor on Debian's LibTorch, the default stack. */
  vs_debian_floor?: number;
  /** The event loop's delay (p99) while this runner's forwards ran; Node runners only. */
  eventloop_p99_ms?: number;
  /** The output's sum equals the first runner's, within 1e-3 relative. */
  output_matches: boolean;
  /** Why the runner gave no figures. */
  error?: string;
}

export interface OptionRow extends Partial<Stats> {
  stack: string;
  option: string;
  output_sum?: number;
  output_matches?: boolean;
  error?: string;
}

export interface ServiceRow {
  backend: 'torch' | 'onnx';
  cache: 'hits' | 'off';
  concurrency: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  requests: number;
  peak_rss_mb: number;
}

// The study of the service on the workshop's full-size model (bench/workshop-service.ts).
export interface BaselineRow extends Stats {
  threads: string;
  torch: string;
  requests_per_s: number;
}

export interface PartForwardRow extends Partial<Stats> {
  part: 'head' | 'text_encoder';
  backend: string;
  /** The BLAS kernel LibTorch used, and why; empty for ONNX Runtime. */
  blas?: string;
  error?: string;
}

export interface WorkshopServiceRow {
  /** Worker processes (WORKERS) and threads each: 1 x 2 (the default) or 2 x 1. */
  workers: number;
  threads: number;
  /** PRECISION: fp32 (the default) or int8 (the folder's int8 variant, on ONNX Runtime); absent in older results: fp32. */
  precision?: 'fp32' | 'int8';
  text: 'same' | 'different';
  concurrency: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  requests: number;
  health_p50_ms: number;
  health_p99_ms: number;
  peak_rss_mb: number;
  /** From /metrics over the run: mean forward (ms) and mean batch size per model part; mean preprocessing. */
  head_forward_ms?: number;
  head_batch?: number;
  text_forward_ms?: number;
  text_batch?: number;
  preprocess_ms?: number;
  queue_ms?: number;
}

export interface WorkshopServiceResults {
  model: string;
  photos: string;
  service: { backend: string; layout: string; threads: number; runtime: string };
  baseline: BaselineRow[];
  forwards: PartForwardRow[];
  runs: WorkshopServiceRow[];
  /** The int8 variants' agreement with fp32, as the exporter measured it (model.json's variants.int8), by model. */
  agreement?: AgreementRow[];
}

/** One model's int8 variant against its fp32 files: the exporter's figures, over its validation photos and texts. */
export interface AgreementRow {
  model: string;
  photos: number;
  texts: number;
  /** The worst text's top-1 agreement and top-5 overlap, the largest |delta p| of any class, photo and text. */
  top1_agreement_worst: number;
  top5_overlap_worst: number;
  max_abs_delta_p: number;
  /** Accuracy of fp32 and int8 with the default text, where the validation folder is labelled with the model's classes. */
  accuracy_fp32?: number;
  accuracy_int8?: number;
  threshold: number;
  passed: boolean;
}

export interface BenchResults {
  kind: 'quick' | 'full';
  date: string;
  machine: { cpu: string; cores: number; memory_gb: number; os: string };
  versions: Record<string, string>;
  environment: Record<string, string>;
  command: string;
  settings: Record<string, unknown>;
  models: { key: string; label: string }[];
  latency: LatencyRow[];
  options: OptionRow[];
  /** The model the options were studied on. */
  options_model?: string;
  service: ServiceRow[];
  service_upload?: string;
  /** The service on the workshop's full-size model, against the workshop's app. */
  workshop_service?: WorkshopServiceResults;
}

/** Nearest-rank percentiles (no interpolation: every figure is a time that was measured). */
export function stats(times: readonly number[]): Stats {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    n: sorted.length,
    p50: round(at(50)),
    p95: round(at(95)),
    p99: round(at(99)),
    mean: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
  };
}
