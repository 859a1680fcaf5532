// NativeModel: the JavaScript object over one loaded ScriptModel (forward, info, dispose).
#pragma once

#include <napi.h>

#include <memory>

#include "script_model.h"

namespace torchnode {

class Addon;

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env);

  // Made by load() only, with an External holding the model.
  explicit NativeModel(const Napi::CallbackInfo& info);
  ~NativeModel() override;

 private:
  Addon* addon();
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<ScriptModel> model_;
  ModelInfo info_;  // kept after dispose, for messages
};

}  // namespace torchnode
