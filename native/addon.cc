// The N-API module: its functions (see addon.h for the list) and the hand-over of jobs to the inference
// thread. No LibTorch headers here.
#include "addon.h"

#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "async_workers.h"
#include "blas.h"
#include "inference_thread.h"
#include "js_promises.h"
#include "native_model.h"
#include "torch_log.h"

namespace torchnode {

namespace {

// An integer option in [min, max], or a RangeError that names it.
int IntegerArgument(Napi::Env env, Napi::Value value, const char* name, int min, int max) {
  double v = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : min - 1.0;
  if (!(v >= min && v <= max && v == static_cast<int>(v))) {
    throw Napi::RangeError::New(
        env, "Expected an integer between " + std::to_string(min) + " and " + std::to_string(max) + " for " + name);
  }
  return static_cast<int>(v);
}

}  // namespace

Addon::Addon(Napi::Env env, Napi::Object exports) {
  model_class = Napi::Persistent(NativeModel::Define(env));
  channel_ = std::make_shared<CompletionChannel>(CompletionQueue::New(env, "torch-node:inference", 0, 1, this));
  channel_->Unref(env);  // idle: let the process exit
  // Registered after the thread-safe function, so it runs before Node frees it (hooks run in reverse).
  auto* hook_channel = new std::shared_ptr<CompletionChannel>(channel_);
  napi_add_env_cleanup_hook(
      env,
      [](void* arg) {
        auto* channel = static_cast<std::shared_ptr<CompletionChannel>*>(arg);
        (*channel)->Close();
        delete channel;
      },
      hook_channel);
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("injectFault",
              Napi::Function::New(env, [this](const Napi::CallbackInfo& info) { return InjectFault(info); }));
  testing.Set("cudaProbes",
              Napi::Function::New(env, [this](const Napi::CallbackInfo& info) { return CudaProbes(info); }));
  testing.Set("inferenceThreads", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Number::New(info.Env(), LiveInferenceThreads());
              }));
  DefineAddon(
      exports,
      {InstanceMethod<&Addon::SetErrorClass>("setErrorClass"), InstanceMethod<&Addon::RuntimeInfoJs>("runtimeInfo"),
       InstanceMethod<&Addon::Load>("load"), InstanceMethod<&Addon::StopForExit>("stopForExit"),
       InstanceMethod<&Addon::CheckBlasJs>("checkBlas"), InstanceMethod<&Addon::SetLogLevelJs>("setLogLevel"),
       InstanceValue("testing", testing, napi_enumerable)});
}

Napi::Value Addon::MakeError(Napi::Env env, const Error& error) {
  if (error_class_.IsEmpty()) {
    Napi::Error e = Napi::Error::New(env, error.what());
    e.Set("code", error.code());
    return e.Value();
  }
  return error_class_.New({Napi::String::New(env, error.what()), Napi::String::New(env, error.code()),
                           Napi::String::New(env, error.details())});
}

napi_value Addon::ErrorValue(napi_env env, const Error& error) noexcept {
  napi_value value = nullptr;
  const std::optional<std::string> failure = FailureOf([&] { value = MakeError(Napi::Env(env), error); });
  if (!failure) return value;
  return PlainError(env, error.code(), std::string(error.what()) + " (the error class failed: " + *failure + ")");
}

void Addon::Submit(Napi::Env env, InferenceThread& thread, std::unique_ptr<InferenceJob> owned) {
  // Posted first: if that fails (out of memory), nothing was counted, the job is freed here, and the exception
  // reaches the caller.
  InferenceJob* job = owned.get();
  thread.Post([job, channel = channel_]() {
    if (!channel->Begin()) {
      AbandonJob(job);
      return;
    }
    RunJob(job);
    channel->End(job);
  });
  owned.release();                          // the inference thread's now, then CompleteJob's
  if (pending_++ == 0) channel_->Ref(env);  // keep the process alive while work is in flight
}

void Addon::Completed(Napi::Env env) {
  if (--pending_ == 0) channel_->Unref(env);
}

void Addon::InjectedFault(Fault fault) {
  if (fault_ != fault) return;
  fault_ = Fault::kNone;
  throw std::bad_alloc();
}

Napi::Value Addon::SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "Expected an error class");
  error_class_ = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value Addon::RuntimeInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto string_or_null = [&env](const std::string& s) { return s.empty() ? env.Null() : Napi::String::New(env, s); };
  RuntimeInfo ri = GetRuntimeInfo();
  Napi::Object out = Napi::Object::New(env);
  out.Set("libtorchVersion", ri.libtorch_version);
  out.Set("builtWithCuda", ri.built_with_cuda);
  out.Set("cudaAvailable", ri.cuda_available);
  out.Set("cudaDeviceCount", ri.cuda_device_count);
  out.Set("cudaDeviceName", string_or_null(ri.cuda_device_name));
  out.Set("defaultThreads", ri.default_threads);
  BlasInfo blas = GetBlasInfo();
  Napi::Object b = Napi::Object::New(env);
  b.Set("library", string_or_null(blas.library));
  b.Set("config", string_or_null(blas.config));
  b.Set("kernel", string_or_null(blas.kernel));
  b.Set("path", string_or_null(blas.path));
  out.Set("blas", b);
  return out;
}

Napi::Value Addon::CheckBlasJs(const Napi::CallbackInfo& info) {
  const int threads = IntegerArgument(info.Env(), info[0], "threads", 1, 1024);
  auto* worker = new BlasCheckWorker(info.Env(), threads);
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself when done
  return promise;
}

Napi::Value Addon::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a string for path");
  LoadOptions options;
  bool own_thread = false;
  if (info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    Napi::Value device = o.Get("device"), threads = o.Get("threads"), optimize = o.Get("optimize");
    Napi::Value thread = o.Get("inferenceThread");
    if (!thread.IsUndefined()) {
      const std::string value = thread.IsString() ? thread.As<Napi::String>().Utf8Value() : "";
      if (value != "own" && value != "shared") {
        throw Napi::TypeError::New(env, "Expected 'own' or 'shared' for inferenceThread");
      }
      own_thread = value == "own";
    }
    if (!device.IsUndefined()) {
      if (!device.IsString()) throw Napi::TypeError::New(env, "Expected a string for device");
      options.device = device.As<Napi::String>().Utf8Value();
    }
    if (!threads.IsUndefined()) options.threads = IntegerArgument(env, threads, "threads", 0, 1024);
    if (!optimize.IsUndefined()) {
      if (!optimize.IsBoolean()) throw Napi::TypeError::New(env, "Expected a boolean for optimize");
      options.optimize = optimize.As<Napi::Boolean>().Value() ? 1 : 0;
    }
    // A model in memory (TorchModel.load of a Buffer): copied here, so that the load on libuv's pool reads
    // bytes the caller can no longer change or free; `path` then only names it.
    Napi::Value bytes = o.Get("bytes");
    if (!bytes.IsUndefined()) {
      if (!bytes.IsTypedArray() || bytes.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        throw Napi::TypeError::New(env, "Expected a Uint8Array for bytes");
      }
      Napi::Uint8Array array = bytes.As<Napi::Uint8Array>();
      if (array.ByteLength() > 0 && array.Data() == nullptr) throw Napi::TypeError::New(env, "The bytes are detached");
      options.bytes =
          std::make_shared<const std::string>(reinterpret_cast<const char*>(array.Data()), array.ByteLength());
    }
  }
  auto* worker = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), options, own_thread);
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself when done
  return promise;
}

// process.exit() during a forward: exit() would destroy LibTorch's static state under the running forward
// and crash. So wait for the forwards running on every inference thread, up to timeoutMs; a forward still
// running then (a model that runs for minutes)
// must not hold the exit up without bound, so the process leaves at once with its exit code, skipping the
// destructors that would crash.
Napi::Value Addon::StopForExit(const Napi::CallbackInfo& info) {
  const int timeout_ms = IntegerArgument(info.Env(), info[0], "timeoutMs", 0, 24 * 3600 * 1000);
  const int exit_code = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 1;
  if (!StopAllInferenceThreadsForExit(timeout_ms)) {
    std::fprintf(stderr,
                 "torchscript-node: a forward was still running %d ms after process.exit(); leaving without waiting "
                 "for it (TORCH_NODE_EXIT_WAIT_MS)\n",
                 timeout_ms);
    std::fflush(stderr);
    std::_Exit(exit_code);
  }
  return info.Env().Undefined();
}

Napi::Value Addon::SetLogLevelJs(const Napi::CallbackInfo& info) {
  const std::string level = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (level == "error") {
    SetLogLevel(LogLevel::kError);
  } else if (level == "warn") {
    SetLogLevel(LogLevel::kWarn);
  } else if (level == "info") {
    SetLogLevel(LogLevel::kInfo);
  } else {
    throw Napi::TypeError::New(info.Env(), "Expected 'error', 'warn' or 'info' for the log level");
  }
  return info.Env().Undefined();
}

Napi::Value Addon::InjectFault(const Napi::CallbackInfo& info) {
  const std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (name == "output-conversion") {
    fault_ = Fault::kOutputConversion;
  } else if (name == "none") {
    fault_ = Fault::kNone;
  } else {
    throw Napi::TypeError::New(info.Env(), "Expected 'output-conversion' or 'none' for the fault");
  }
  return info.Env().Undefined();
}

Napi::Value Addon::CudaProbes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), CudaProbeCount());
}

}  // namespace torchnode

using TorchNodeAddon = torchnode::Addon;
NODE_API_ADDON(TorchNodeAddon)
