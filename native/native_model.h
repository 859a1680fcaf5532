// NativeModel: the JavaScript object over one loaded ScriptModel (forward, info, dispose).
#pragma once

#include <napi.h>

#include <memory>

#include "inference_thread.h"
#include "script_model.h"

namespace torchnode {

class Addon;

// A loaded model and the inference thread its forwards run on (the shared one, or its own).
struct LoadedModel {
  std::shared_ptr<ScriptModel> model;
  std::shared_ptr<InferenceThread> thread;
};

// Frees the model on its inference thread, after the jobs queued there (its forwards), then lets a thread of
// the model's own end.
void ReleaseModel(LoadedModel loaded);

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env);

  // Made by load() only, with an External<LoadedModel>, whose model it takes.
  explicit NativeModel(const Napi::CallbackInfo& info);
  ~NativeModel() override;

 private:
  Addon* addon();
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<ScriptModel> model_;
  std::shared_ptr<InferenceThread> thread_;
  ModelInfo info_;  // kept after dispose, for messages
};

}  // namespace torchnode
