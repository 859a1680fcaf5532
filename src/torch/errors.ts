import { ModelError } from '../model.js';

/**
 * The error of everything LibTorch or the addon reports: a failed load, a forward that raised, a disposed
 * model. Argument mistakes are TypeError or RangeError instead, thrown before anything is queued.
 *
 * `code` is stable, for programs to switch on:
 * - ERR_MODEL_NOT_FOUND, ERR_NOT_TORCHSCRIPT, ERR_MODEL_CORRUPT, ERR_LIBTORCH_TOO_OLD, ERR_MODEL_LOAD,
 *   ERR_MODEL_OPTIMIZE: loading failed (the message says why and what to do);
 * - ERR_INVALID_DEVICE, ERR_CUDA_UNAVAILABLE: the device asked for is not there;
 * - ERR_INVALID_ARGUMENT: the addon's own check of a forward's arguments against the model's schema refused them
 *   (what the library's TypeScript checks let through; those throw a TypeError/RangeError with this code first);
 * - ERR_FORWARD: the model raised (wrong shapes, a dtype it does not take: named, with the weights' dtype, its
 *   own checks);
 * - ERR_UNSUPPORTED_OUTPUT: the model returned something other than tensors;
 * - ERR_MODEL_DISPOSED: the model was disposed;
 * - ERR_OUTPUT_CONVERSION: the outputs could not be handed to JavaScript (out of memory);
 * - ERR_ADDON_NOT_BUILT, ERR_ADDON_LOAD: the native addon is missing or cannot be loaded. An installed package
 *   whose install found no LibTorch (or no cmake or C++ compiler) has no addon: ERR_ADDON_NOT_BUILT says what
 *   was missing and how to get it, then `npm rebuild torchscript-node` (torchscript-node/onnx needs no addon).
 * A ModelError (src/model.ts), like ONNX Runtime's errors: `details` is LibTorch's full message (without its
 * C++ backtrace), where there is one.
 */
export class TorchError extends ModelError {
  override readonly name: string = 'TorchError';
}
