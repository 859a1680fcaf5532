#include "async_workers.h"

#include "addon.h"

namespace torchnode {

LoadWorker::LoadWorker(Napi::Env env, std::string path, LoadOptions options)
    : Napi::AsyncWorker(env, "torch-node:load"),
      deferred_(Napi::Promise::Deferred::New(env)),
      path_(std::move(path)),
      options_(std::move(options)) {}

void LoadWorker::Execute() {
  try {
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
  // What throws here (the error class; an allocation) rejects the promise, rather than escaping to Node as
  // an uncaught exception with the promise never settled.
  try {
    if (error_) {
      deferred_.Reject(addon->MakeError(env, *error_));
      return;
    }
    std::shared_ptr<ScriptModel> shared(std::move(model_));
    auto external = Napi::External<std::shared_ptr<ScriptModel>>::New(env, &shared);
    deferred_.Resolve(addon->model_class.New({external}));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

BlasCheckWorker::BlasCheckWorker(Napi::Env env, int threads)
    : Napi::AsyncWorker(env, "torch-node:blas-check"),
      deferred_(Napi::Promise::Deferred::New(env)),
      threads_(threads) {}

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

}  // namespace torchnode
