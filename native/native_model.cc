#include "native_model.h"

#include "addon.h"
#include "inference_thread.h"
#include "js_tensors.h"

namespace torchnode {

void ReleaseModel(LoadedModel loaded) {
  InferenceThread& thread = *loaded.thread;
  thread.Post([model = std::move(loaded.model)]() mutable { model.reset(); });
  thread.Finish();
}

Napi::Function NativeModel::Define(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {InstanceMethod<&NativeModel::Forward>("forward"), InstanceMethod<&NativeModel::Info>("info"),
                      InstanceMethod<&NativeModel::Dispose>("dispose")});
}

NativeModel::NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
  if (!info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeModel cannot be constructed directly: use load()");
  }
  LoadedModel* loaded = info[0].As<Napi::External<LoadedModel>>().Data();
  info_ = loaded->model->info();
  thread_ = loaded->thread;
  model_ = std::move(loaded->model);  // last: nothing above throws once the model is this object's
}

NativeModel::~NativeModel() {
  // Collected without dispose(): free the model on its inference thread, after its queued forwards.
  if (model_) ReleaseModel({std::move(model_), thread_});
}

Addon* NativeModel::addon() { return Env().GetInstanceData<Addon>(); }

Napi::Value NativeModel::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // First: an argument mistake throws TypeError/RangeError at once, before any promise exists.
  CopiedInputs inputs = ParseInputs(env, info[0]);
  auto job = std::make_unique<InferenceJob>(env);
  Napi::Promise promise = job->promise;
  if (!model_) {
    SettleJob(env, job.get(), false,
              addon()->ErrorValue(env, Error("ERR_MODEL_DISPOSED", "The model " + info_.path + " has been disposed")));
    return promise;
  }
  job->inputs = std::move(inputs);
  job->model = model_;
  addon()->Submit(env, *thread_, std::move(job));
  return promise;
}

Napi::Value NativeModel::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("path", info_.path);
  out.Set("device", info_.device);
  out.Set("threads", info_.threads);
  out.Set("optimized", info_.optimized);
  out.Set("inferenceThread", thread_->shared() ? "shared" : "own");
  out.Set("forwardSchema", info_.forward_schema);
  Napi::Array names = Napi::Array::New(env, info_.input_names.size());
  for (uint32_t i = 0; i < info_.input_names.size(); ++i) names.Set(i, info_.input_names[i]);
  out.Set("inputNames", names);
  // forward's arguments (types, defaults) and the weights' dtypes: the library checks inputs against them.
  Napi::Array args = Napi::Array::New(env, info_.inputs.size());
  for (uint32_t i = 0; i < info_.inputs.size(); ++i) {
    Napi::Object a = Napi::Object::New(env);
    a.Set("name", info_.inputs[i].name);
    a.Set("type", info_.inputs[i].type);
    if (info_.inputs[i].has_default) a.Set("default", info_.inputs[i].default_value);
    args.Set(i, a);
  }
  out.Set("inputs", args);
  out.Set("outputType", info_.output_type);
  Napi::Array weights = Napi::Array::New(env, info_.weight_dtypes.size());
  for (uint32_t i = 0; i < info_.weight_dtypes.size(); ++i) weights.Set(i, info_.weight_dtypes[i]);
  out.Set("weightDtypes", weights);
  out.Set("disposed", !model_);
  return out;
}

Napi::Value NativeModel::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto job = std::make_unique<InferenceJob>(env);
  Napi::Promise promise = job->promise;
  if (!model_) {
    SettleJob(env, job.get(), true, env.Undefined());  // disposing twice is harmless
    return promise;
  }
  job->dispose = true;
  job->model = model_;
  addon()->Submit(env, *thread_, std::move(job));
  model_.reset();
  thread_->Finish();  // the release was the model's last job: a thread of its own ends after it
  return promise;
}

}  // namespace torchnode
