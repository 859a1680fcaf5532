#include "async_workers.h"

#include "addon.h"
#include "inference_thread.h"
#include "js_promises.h"
#include "native_model.h"

namespace torchnode {

namespace {

// A promise for a worker: its deferred, settled later through js_promises.h, and the promise to return.
Napi::Promise MakePromise(Napi::Env env, napi_deferred* deferred) {
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, deferred, &promise), Napi::Promise());
  return Napi::Promise(env, promise);
}

// Runs `make`, which builds the value to resolve with; resolves with it, or rejects with a plain Error with
// `code` when it throws (an allocation failed; the environment is stopping).
template <typename Make>
void ResolveWith(Napi::Env env, napi_deferred* deferred, const char* code, const char* what, Make make) {
  napi_value value = nullptr;
  if (const std::optional<std::string> failure = FailureOf([&] { value = make(); })) {
    SettlePromise(env, deferred, false, PlainError(env, code, std::string(what) + ": " + *failure));
  } else {
    SettlePromise(env, deferred, true, value);
  }
}

// OnError's rejection: node-addon-api calls OnError instead of OnOK when Execute() threw (SetError), with an
// Error made of what it threw. `error` is empty when even that could not be made.
void RejectOnError(Napi::Env env, napi_deferred* deferred, const char* code, const char* what,
                   const Napi::Error& error) noexcept {
  if (*deferred == nullptr) return;
  std::string message = what;
  const std::optional<std::string> failure = FailureOf([&] {
    if (!error.IsEmpty()) message += std::string(": ") + error.Message();
  });
  if (failure) message += ": " + *failure;
  napi_value value = env.GetInstanceData<Addon>()->ErrorValue(env, Error(code, message));
  SettlePromise(env, deferred, false, value);
}

}  // namespace

LoadWorker::LoadWorker(Napi::Env env, std::string path, LoadOptions options, bool own_thread)
    : Napi::AsyncWorker(env, "torch-node:load"),
      promise_(MakePromise(env, &deferred_)),
      path_(std::move(path)),
      options_(std::move(options)),
      own_thread_(own_thread) {}

void LoadWorker::Execute() {
  // The thread is found or started here, inside the catch: starting one throws std::system_error at a limit on
  // threads (ulimit -u, a container's pids limit), and the load must then reject, not stay pending.
  try {
    thread_ = own_thread_ ? InferenceThread::Start() : InferenceThread::Shared();
  } catch (const std::exception& e) {
    error_ = std::make_unique<Error>("ERR_MODEL_LOAD",
                                     std::string("Cannot start an inference thread for the model: ") + e.what());
    return;
  } catch (...) {
    error_ = std::make_unique<Error>("ERR_MODEL_LOAD", "Cannot start an inference thread for the model");
    return;
  }
  try {
    // The optimisation step runs LibTorch operators: on the model's inference thread, where its forwards will run.
    options_.run_operators = [thread = thread_](std::function<void()> step) {
      RunOnInferenceThread(*thread, std::move(step));
    };
    model_ = ScriptModel::Load(path_, options_);
  } catch (const Error& e) {
    error_ = std::make_unique<Error>(e);
  } catch (const std::exception& e) {
    error_ = std::make_unique<Error>("ERR_MODEL_LOAD", e.what());
  } catch (...) {
    error_ = std::make_unique<Error>("ERR_MODEL_LOAD", "unknown C++ exception");
  }
}

void LoadWorker::OnOK() {
  Napi::Env env = Env();
  Addon* addon = env.GetInstanceData<Addon>();
  if (error_) {
    SettlePromise(env, &deferred_, false, addon->ErrorValue(env, *error_));
    return;  // the destructor lets a thread of the model's own end
  }
  LoadedModel loaded{std::shared_ptr<ScriptModel>(std::move(model_)), std::move(thread_)};
  ResolveWith(env, &deferred_, "ERR_MODEL_LOAD", "Cannot hand the loaded model to JavaScript", [&]() -> napi_value {
    auto external = Napi::External<LoadedModel>::New(env, &loaded);
    return addon->model_class.New({external});  // takes the model out of `loaded`
  });
  if (loaded.model) ReleaseModel(std::move(loaded));  // no NativeModel took it
}

void LoadWorker::OnError(const Napi::Error& error) {
  // Execute() catches everything, so this runs only when something escaped it anyway: the promise still settles.
  RejectOnError(Env(), &deferred_, "ERR_MODEL_LOAD", "The load failed", error);
}

LoadWorker::~LoadWorker() {
  // Not handed to a NativeModel (the load failed, or its environment ended first): the model is freed where
  // its forwards would have run, and a thread of its own ends.
  if (!thread_) return;
  if (model_) {
    ReleaseModel({std::shared_ptr<ScriptModel>(std::move(model_)), thread_});
  } else {
    thread_->Finish();
  }
}

BlasCheckWorker::BlasCheckWorker(Napi::Env env, int threads)
    : Napi::AsyncWorker(env, "torch-node:blas-check"), promise_(MakePromise(env, &deferred_)), threads_(threads) {}

void BlasCheckWorker::Execute() {
  try {
    result_ = CheckBlas(threads_);
  } catch (const std::exception& e) {
    error_ = e.what();
  } catch (...) {
    error_ = "unknown C++ exception";
  }
}

void BlasCheckWorker::OnOK() {
  Napi::Env env = Env();
  if (!error_.empty()) {
    Error error("ERR_BLAS_CHECK", "The BLAS check failed: " + error_);
    SettlePromise(env, &deferred_, false, env.GetInstanceData<Addon>()->ErrorValue(env, error));
    return;
  }
  ResolveWith(env, &deferred_, "ERR_BLAS_CHECK", "Cannot hand the BLAS check's result to JavaScript",
              [&]() -> napi_value {
                Napi::Object out = Napi::Object::New(env);
                out.Set("cases", result_.cases);
                out.Set("maxRelativeErrorFloat32", result_.max_relative_error_float32);
                out.Set("maxRelativeErrorFloat64", result_.max_relative_error_float64);
                out.Set("worstCase", result_.worst_case);
                out.Set("gflops", result_.gflops);
                return out;
              });
}

void BlasCheckWorker::OnError(const Napi::Error& error) {
  RejectOnError(Env(), &deferred_, "ERR_BLAS_CHECK", "The BLAS check failed", error);
}

}  // namespace torchnode
