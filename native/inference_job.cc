#include "inference_job.h"

#include <exception>
#include <string>

#include "addon.h"
#include "js_promises.h"

namespace torchnode {

InferenceJob::InferenceJob(Napi::Env env) {
  napi_value value;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_promise(env, &deferred, &value));
  promise = Napi::Promise(env, value);
}

void AbandonJob(InferenceJob* job) { delete job; }

bool CompletionChannel::Begin() {
  std::lock_guard<std::mutex> lock(mutex_);
  return open_;
}

void CompletionChannel::End(InferenceJob* job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_ || queue_.NonBlockingCall(job) != napi_ok) AbandonJob(job);
}

void CompletionChannel::Close() {
  std::lock_guard<std::mutex> lock(mutex_);
  open_ = false;
}

void SettleJob(napi_env env, InferenceJob* job, bool resolve, napi_value value) noexcept {
  SettlePromise(env, &job->deferred, resolve, value);
}

void RunJob(InferenceJob* job) {
  if (job->dispose) {
    job->model.reset();  // the last owner frees the model here, off the JavaScript thread
    return;
  }
  try {
    job->result = job->model->Forward(job->inputs.views);
  } catch (const Error& e) {
    job->error = std::make_unique<Error>(e);
  } catch (const std::exception& e) {
    job->error = std::make_unique<Error>("ERR_FORWARD", e.what());
  } catch (...) {
    job->error = std::make_unique<Error>("ERR_FORWARD", "unknown C++ exception");
  }
  job->inputs = CopiedInputs();  // the outputs own their memory (script_model.cc): the copies can go now
  job->model.reset();
}

void CompleteJob(Napi::Env env, Napi::Function, Addon* addon, InferenceJob* raw_job) {
  std::unique_ptr<InferenceJob> job(raw_job);
  if (env == nullptr) {  // the environment is being torn down
    AbandonJob(job.release());
    return;
  }
  try {
    addon->Completed(env);
  } catch (...) {
    // Unref failed: the environment is stopping; the job is still settled below if it can be.
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (job->error) {
    SettleJob(env, job.get(), false, addon->ErrorValue(env, *job->error));
  } else if (job->dispose) {
    SettleJob(env, job.get(), true, nullptr);
  } else {
    napi_value outputs = nullptr;
    const std::optional<std::string> failure = FailureOf([&] {
      addon->InjectedFault(Fault::kOutputConversion);
      outputs = ResultToJs(env, job->result);
    });
    if (!failure) {
      SettleJob(env, job.get(), true, outputs);
    } else {
      SettleJob(
          env, job.get(), false,
          PlainError(env, "ERR_OUTPUT_CONVERSION", "Cannot hand the forward's outputs to JavaScript: " + *failure));
    }
  }
  napi_close_handle_scope(env, scope);
}

}  // namespace torchnode
