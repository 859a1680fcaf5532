// The addon's work on libuv's pool: loading a model (seconds for a large one) and the BLAS check (about a
// second). Options are copied into plain C++ on the JavaScript thread; Execute() touches no JavaScript; OnOK()
// settles the promise whatever fails (the error class throws: a plain Error with the code), and so does OnError(),
// which node-addon-api calls instead when Execute() threw: every worker that holds a deferred overrides both.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "blas.h"
#include "inference_thread.h"
#include "script_model.h"

namespace torchnode {

// Loads on the libuv pool: reading, parsing and optimising a large model takes seconds, and must
// neither block the event loop nor hold up forwards of other models on the inference thread.
class LoadWorker : public Napi::AsyncWorker {
 public:
  // `own_thread`: the model gets an inference thread of its own (load option inferenceThread), else the shared one.
  LoadWorker(Napi::Env env, std::string path, LoadOptions options, bool own_thread);
  ~LoadWorker() override;
  Napi::Promise Promise() { return promise_; }  // in the scope that made the worker
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;  // Execute() threw after all: the promise still settles

 private:
  napi_deferred deferred_ = nullptr;  // settled through js_promises.h: nothing in OnOK throws
  Napi::Promise promise_;
  std::string path_;
  LoadOptions options_;
  bool own_thread_;
  std::shared_ptr<InferenceThread> thread_;  // where the model's optimisation step and forwards run
  std::unique_ptr<ScriptModel> model_;
  std::unique_ptr<Error> error_;
};

// The BLAS check (blas.h) on the libuv pool.
class BlasCheckWorker : public Napi::AsyncWorker {
 public:
  BlasCheckWorker(Napi::Env env, int threads);
  Napi::Promise Promise() { return promise_; }  // in the scope that made the worker
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;  // Execute() threw after all: the promise still settles

 private:
  napi_deferred deferred_ = nullptr;  // settled through js_promises.h: nothing in OnOK throws
  Napi::Promise promise_;
  int threads_;
  BlasCheck result_;
  std::string error_;
};

}  // namespace torchnode
