// The addon's state for one JavaScript environment (the main thread or a worker thread): the error class
// native errors are made with, the channel forwards come back on, and the module's functions.
//
//   setErrorClass(TorchError)           the class native errors are created with (gets .code, .details)
//   runtimeInfo()                       {libtorchVersion, builtWithCuda, cudaAvailable, ...}
//   load(path, {device, threads, optimize, inferenceThread: 'own'|'shared'}) -> Promise<NativeModel>  (libuv pool)
//   NativeModel#forward(inputs) -> Promise<{kind, tensors}>            (the model's inference thread)
//   NativeModel#info() -> {path, device, threads, optimized, inferenceThread, forwardSchema, inputNames, disposed}
//   NativeModel#dispose() -> Promise<void>  (after the forwards already queued)
//   stopForExit(timeoutMs, exitCode)    on process exit: wait for the running forwards (bounded), start no other
//   setLogLevel('error'|'warn'|'info')  what LibTorch's warnings become (torch_log.h); process-wide
//   checkBlas(threads) -> Promise<{cases, maxRelativeErrorFloat32, ...}>  (libuv pool; see blas.h)
//   testing: {injectFault(name), cudaProbes(), inferenceThreads()}   for the addon's own tests
#pragma once

#include <napi.h>

#include <memory>

#include "inference_job.h"
#include "inference_thread.h"
#include "script_model.h"

namespace torchnode {

// Failures the tests make happen on purpose, where a real one cannot be provoked on demand.
enum class Fault { kNone, kOutputConversion };

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);

  // The library's error class (setErrorClass) with message, code and details; a plain Error with a code
  // before one is set. Throws Napi::Error when the class's constructor throws.
  Napi::Value MakeError(Napi::Env env, const Error& error);

  // MakeError for a promise to reject with, which throws nothing: when the class throws, a plain Error with
  // the same code, whose message adds what the class threw.
  napi_value ErrorValue(napi_env env, const Error& error) noexcept;

  // Runs `job` on `thread` (the model's inference thread); the completion channel brings it back to CompleteJob.
  void Submit(Napi::Env env, InferenceThread& thread, std::unique_ptr<InferenceJob> job);
  // A job is back on the JavaScript thread.
  void Completed(Napi::Env env);

  // Throws std::bad_alloc at `fault` once when a test asked for it (testing.injectFault).
  void InjectedFault(Fault fault);

  Napi::FunctionReference model_class;

 private:
  Napi::Value SetErrorClass(const Napi::CallbackInfo& info);
  Napi::Value RuntimeInfoJs(const Napi::CallbackInfo& info);
  Napi::Value CheckBlasJs(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value StopForExit(const Napi::CallbackInfo& info);
  Napi::Value InjectFault(const Napi::CallbackInfo& info);
  Napi::Value CudaProbes(const Napi::CallbackInfo& info);
  Napi::Value SetLogLevelJs(const Napi::CallbackInfo& info);

  Napi::FunctionReference error_class_;
  std::shared_ptr<CompletionChannel> channel_;
  int pending_ = 0;
  Fault fault_ = Fault::kNone;
};

}  // namespace torchnode
