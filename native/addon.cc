// The N-API surface of the addon: the module's functions, the NativeModel class, and the hand-over of
// work to other threads and of results (or errors) back to JavaScript. No LibTorch headers here.
//
//   setErrorClass(TorchError)           the class native errors are created with (gets .code, .details)
//   runtimeInfo()                       {libtorchVersion, builtWithCuda, cudaAvailable, ...}
//   load(path, {device, threads, optimize}) -> Promise<NativeModel>     (libuv pool)
//   NativeModel#forward(inputs) -> Promise<{kind, tensors}>            (the inference thread)
//   NativeModel#info() -> {path, device, threads, optimized, forwardSchema, inputNames, disposed}
//   NativeModel#dispose() -> Promise<void>  (after the forwards already queued)
//   stopForExit()                       on process exit: wait for the running forward, start no other
//   checkBlas(threads) -> Promise<{cases, maxRelativeErrorFloat32, ...}>  (libuv pool; see blas.h)
#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "blas.h"
#include "inference_thread.h"
#include "js_tensors.h"
#include "script_model.h"

namespace torchnode {

class Addon;

// A forward or a dispose on its way to the inference thread and back.
struct InferenceJob {
  explicit InferenceJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  std::vector<Napi::ObjectReference> keep_alive;  // the input typed arrays, read in place
  std::shared_ptr<ScriptModel> model;
  std::vector<TensorView> inputs;
  bool dispose = false;
  ForwardResult result;
  std::unique_ptr<Error> error;
};

void CompleteJob(Napi::Env env, Napi::Function, Addon* addon, InferenceJob* job);
using CompletionQueue = Napi::TypedThreadSafeFunction<Addon, InferenceJob, CompleteJob>;

// Forgets a job whose JavaScript environment is gone: its references must not be touched any more.
void AbandonJob(InferenceJob* job) {
  for (auto& ref : job->keep_alive) ref.SuppressDestruct();
  delete job;
}

// The link between the inference thread and one JavaScript environment, which can end at any moment
// (process.exit(), a worker thread terminated) while jobs are queued or running. At its end, Node frees
// the input buffers a running forward reads, and the thread-safe function that brings results back. So
// an environment cleanup hook closes the channel first: it waits for the job that is running (a forward
// reads JavaScript memory until it returns), and after it no job of that environment starts or reports.
class CompletionChannel {
 public:
  explicit CompletionChannel(CompletionQueue queue) : queue_(queue) {}

  // Inference thread, before a job: false when the environment is gone (skip the job).
  bool Begin() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (open_) ++running_;
    return open_;
  }

  // Inference thread, after a job that Begin() let run: hands it back to JavaScript, or abandons it.
  void End(InferenceJob* job) {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    if (!open_ || queue_.NonBlockingCall(job) != napi_ok) AbandonJob(job);
    idle_.notify_all();
  }

  // JavaScript thread, at environment cleanup.
  void Close() {
    std::unique_lock<std::mutex> lock(mutex_);
    open_ = false;
    idle_.wait(lock, [this] { return running_ == 0; });
  }

  void Ref(Napi::Env env) { queue_.Ref(env); }
  void Unref(Napi::Env env) { queue_.Unref(env); }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  bool open_ = true;
  int running_ = 0;
  CompletionQueue queue_;
};

Error ErrorFromUnknown(const char* code, const std::exception* e) {
  return Error(code, e ? e->what() : "unknown C++ exception");
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);

  Napi::Value MakeError(Napi::Env env, const Error& error) {
    if (error_class_.IsEmpty()) {
      Napi::Error e = Napi::Error::New(env, error.what());
      e.Set("code", error.code());
      return e.Value();
    }
    return error_class_.New({Napi::String::New(env, error.what()), Napi::String::New(env, error.code()),
                             Napi::String::New(env, error.details())});
  }

  // Runs `job` on the inference thread; the completion channel brings it back to CompleteJob.
  void Submit(Napi::Env env, InferenceJob* job) {
    if (pending_++ == 0) channel_->Ref(env);  // keep the process alive while work is in flight
    PostToInferenceThread([job, channel = channel_]() {
      if (!channel->Begin()) {
        AbandonJob(job);
        return;
      }
      if (job->dispose) {
        job->model.reset();  // the last owner frees the model here, off the JavaScript thread
      } else {
        try {
          job->result = job->model->Forward(job->inputs);
        } catch (const Error& e) {
          job->error = std::make_unique<Error>(e);
        } catch (const std::exception& e) {
          job->error = std::make_unique<Error>(ErrorFromUnknown("ERR_FORWARD", &e));
        } catch (...) {
          job->error = std::make_unique<Error>(ErrorFromUnknown("ERR_FORWARD", nullptr));
        }
        job->model.reset();
      }
      channel->End(job);
    });
  }

  void Completed(Napi::Env env) {
    if (--pending_ == 0) channel_->Unref(env);
  }

  Napi::FunctionReference model_class;

 private:
  Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
    if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "Expected an error class");
    error_class_ = Napi::Persistent(info[0].As<Napi::Function>());
    return info.Env().Undefined();
  }

  Napi::Value RuntimeInfoJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RuntimeInfo ri = GetRuntimeInfo();
    Napi::Object out = Napi::Object::New(env);
    out.Set("libtorchVersion", ri.libtorch_version);
    out.Set("builtWithCuda", ri.built_with_cuda);
    out.Set("cudaAvailable", ri.cuda_available);
    out.Set("cudaDeviceCount", ri.cuda_device_count);
    out.Set("cudaDeviceName", ri.cuda_device_name.empty() ? env.Null() : Napi::String::New(env, ri.cuda_device_name));
    out.Set("defaultThreads", ri.default_threads);
    BlasInfo blas = GetBlasInfo();
    Napi::Object b = Napi::Object::New(env);
    b.Set("library", blas.library.empty() ? env.Null() : Napi::String::New(env, blas.library));
    b.Set("config", blas.config.empty() ? env.Null() : Napi::String::New(env, blas.config));
    b.Set("kernel", blas.kernel.empty() ? env.Null() : Napi::String::New(env, blas.kernel));
    b.Set("path", blas.path.empty() ? env.Null() : Napi::String::New(env, blas.path));
    out.Set("blas", b);
    return out;
  }

  Napi::Value CheckBlasJs(const Napi::CallbackInfo& info);

  Napi::Value Load(const Napi::CallbackInfo& info);

  Napi::Value StopForExit(const Napi::CallbackInfo& info) {
    StopInferenceThreadForExit();
    return info.Env().Undefined();
  }

  Napi::FunctionReference error_class_;
  std::shared_ptr<CompletionChannel> channel_;
  int pending_ = 0;
};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&NativeModel::Forward>("forward"), InstanceMethod<&NativeModel::Info>("info"),
                        InstanceMethod<&NativeModel::Dispose>("dispose")});
  }

  NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    if (!info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "NativeModel cannot be constructed directly: use load()");
    }
    model_ = *info[0].As<Napi::External<std::shared_ptr<ScriptModel>>>().Data();
    info_ = model_->info();
  }

  ~NativeModel() override {
    // Collected without dispose(): free the model on the inference thread, after its queued forwards.
    if (model_) PostToInferenceThread([model = std::move(model_)]() mutable { model.reset(); });
  }

 private:
  Addon* addon() { return Env().GetInstanceData<Addon>(); }

  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto job = std::make_unique<InferenceJob>(env);
    if (!model_) {
      job->deferred.Reject(
          addon()->MakeError(env, Error("ERR_MODEL_DISPOSED", "The model " + info_.path + " has been disposed")));
      return job->deferred.Promise();
    }
    job->inputs = ParseInputs(env, info[0], &job->keep_alive);  // throws TypeError/RangeError at once
    job->model = model_;
    Napi::Promise promise = job->deferred.Promise();
    addon()->Submit(env, job.release());
    return promise;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("path", info_.path);
    out.Set("device", info_.device);
    out.Set("threads", info_.threads);
    out.Set("optimized", info_.optimized);
    out.Set("forwardSchema", info_.forward_schema);
    Napi::Array names = Napi::Array::New(env, info_.input_names.size());
    for (uint32_t i = 0; i < info_.input_names.size(); ++i) names.Set(i, info_.input_names[i]);
    out.Set("inputNames", names);
    out.Set("disposed", !model_);
    return out;
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto job = std::make_unique<InferenceJob>(env);
    Napi::Promise promise = job->deferred.Promise();
    if (!model_) {
      job->deferred.Resolve(env.Undefined());  // disposing twice is harmless
      return promise;
    }
    job->dispose = true;
    job->model = std::move(model_);
    addon()->Submit(env, job.release());
    return promise;
  }

  std::shared_ptr<ScriptModel> model_;
  ModelInfo info_;  // kept after dispose, for messages
};

void CompleteJob(Napi::Env env, Napi::Function, Addon* addon, InferenceJob* raw_job) {
  std::unique_ptr<InferenceJob> job(raw_job);
  if (env == nullptr) {  // the environment is being torn down
    AbandonJob(job.release());
    return;
  }
  // Nothing may escape this callback (Node would call std::terminate): a JavaScript call here fails only
  // when the environment is terminating (a worker being stopped), and then nobody waits for the answer.
  try {
    Napi::HandleScope scope(env);
    addon->Completed(env);
    if (job->error) {
      job->deferred.Reject(addon->MakeError(env, *job->error));
    } else if (job->dispose) {
      job->deferred.Resolve(env.Undefined());
    } else {
      try {
        job->deferred.Resolve(ResultToJs(env, job->result));
      } catch (const Napi::Error& e) {
        job->deferred.Reject(e.Value());
      }
    }
  } catch (const Napi::Error&) {
  }
}

// Loads on the libuv pool: reading, parsing and optimising a large model takes seconds, and must
// neither block the event loop nor hold up forwards of other models on the inference thread.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, LoadOptions options)
      : Napi::AsyncWorker(env, "torch-node:load"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        options_(std::move(options)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      model_ = ScriptModel::Load(path_, options_);
    } catch (const Error& e) {
      error_ = std::make_unique<Error>(e);
    } catch (const std::exception& e) {
      error_ = std::make_unique<Error>(ErrorFromUnknown("ERR_MODEL_LOAD", &e));
    } catch (...) {
      error_ = std::make_unique<Error>(ErrorFromUnknown("ERR_MODEL_LOAD", nullptr));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Addon* addon = env.GetInstanceData<Addon>();
    if (error_) {
      deferred_.Reject(addon->MakeError(env, *error_));
      return;
    }
    std::shared_ptr<ScriptModel> shared(std::move(model_));
    auto external = Napi::External<std::shared_ptr<ScriptModel>>::New(env, &shared);
    deferred_.Resolve(addon->model_class.New({external}));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  LoadOptions options_;
  std::unique_ptr<ScriptModel> model_;
  std::unique_ptr<Error> error_;
};

// The BLAS check (blas.h) on the libuv pool: it takes about a second.
class BlasCheckWorker : public Napi::AsyncWorker {
 public:
  BlasCheckWorker(Napi::Env env, int threads)
      : Napi::AsyncWorker(env, "torch-node:blas-check"),
        deferred_(Napi::Promise::Deferred::New(env)),
        threads_(threads) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      result_ = CheckBlas(threads_);
    } catch (const std::exception& e) {
      error_ = e.what();
    } catch (...) {
      error_ = "unknown C++ exception";
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!error_.empty()) {
      deferred_.Reject(
          env.GetInstanceData<Addon>()->MakeError(env, Error("ERR_BLAS_CHECK", "The BLAS check failed: " + error_)));
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("cases", result_.cases);
    out.Set("maxRelativeErrorFloat32", result_.max_relative_error_float32);
    out.Set("maxRelativeErrorFloat64", result_.max_relative_error_float64);
    out.Set("worstCase", result_.worst_case);
    out.Set("gflops", result_.gflops);
    deferred_.Resolve(out);
  }

 private:
  Napi::Promise::Deferred deferred_;
  int threads_;
  BlasCheck result_;
  std::string error_;
};

Napi::Value Addon::CheckBlasJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double threads = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(threads >= 1 && threads <= 1024 && threads == static_cast<int>(threads))) {
    throw Napi::RangeError::New(env, "Expected an integer between 1 and 1024 for threads");
  }
  auto* worker = new BlasCheckWorker(env, static_cast<int>(threads));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Addon::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a string for path");
  LoadOptions options;
  if (info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    Napi::Value device = o.Get("device"), threads = o.Get("threads"), optimize = o.Get("optimize");
    if (!device.IsUndefined()) {
      if (!device.IsString()) throw Napi::TypeError::New(env, "Expected a string for device");
      options.device = device.As<Napi::String>().Utf8Value();
    }
    if (!threads.IsUndefined()) {
      double t = threads.IsNumber() ? threads.As<Napi::Number>().DoubleValue() : -1;
      if (!(t >= 0 && t <= 1024 && t == static_cast<int>(t))) {
        throw Napi::RangeError::New(env, "Expected an integer between 0 and 1024 for threads");
      }
      options.threads = static_cast<int>(t);
    }
    if (!optimize.IsUndefined()) {
      if (!optimize.IsBoolean()) throw Napi::TypeError::New(env, "Expected a boolean for optimize");
      options.optimize = optimize.As<Napi::Boolean>().Value() ? 1 : 0;
    }
  }
  auto* worker = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), options);
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself when done
  return promise;
}

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
  DefineAddon(exports,
              {InstanceMethod<&Addon::SetErrorClass>("setErrorClass"),
               InstanceMethod<&Addon::RuntimeInfoJs>("runtimeInfo"), InstanceMethod<&Addon::Load>("load"),
               InstanceMethod<&Addon::StopForExit>("stopForExit"), InstanceMethod<&Addon::CheckBlasJs>("checkBlas")});
}

}  // namespace torchnode

using TorchNodeAddon = torchnode::Addon;
NODE_API_ADDON(TorchNodeAddon)
