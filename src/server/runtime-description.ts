// What runs the model, in the words of /system_status and of the start-up log line: the backend and its
// version, the precision, the files, the threads, and for LibTorch the BLAS kernel its matrix products run on.
import path from 'node:path';

import type { FoodClassifier } from '../classifier/classifier.js';
import { layoutFiles } from '../classifier/model-folder.js';
import { runtimeInfo } from '../index.js';

export interface RuntimeDescription {
  backend: 'torch' | 'onnx';
  /** fp32 (the export's files), or int8 (the folder's int8 variant, PRECISION=int8 or auto). */
  precision: 'fp32' | 'int8';
  /** `parts`: text_encoder + head, a text's features computed once; `whole`: best_model. */
  layout: 'parts' | 'whole';
  model_files: string[];
  device: string;
  threads: number;
  libtorch: { version: string; blas: { library: string | null; kernel: string | null; source: string } } | null;
  onnxruntime: { version: string } | null;
}

export function describeRuntime(classifier: FoodClassifier): RuntimeDescription {
  const { backend, version, threads } = classifier.runtime;
  let libtorch: RuntimeDescription['libtorch'] = null;
  if (backend === 'torch') {
    // Only when LibTorch is already loaded (it is, for this backend): the ONNX backend never loads it.
    const { blas } = runtimeInfo();
    libtorch = { version, blas: { library: blas.library, kernel: blas.kernel, source: blas.source } };
  }
  return {
    backend,
    precision: classifier.precision,
    layout: classifier.layout,
    model_files: layoutFiles(classifier.folder.layout).map((f) => path.basename(f)),
    device: classifier.device,
    threads,
    libtorch,
    onnxruntime: backend === 'onnx' ? { version } : null,
  };
}
