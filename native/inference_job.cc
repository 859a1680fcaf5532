#include "inference_job.h"

#include <exception>
#include <string>

#include "addon.h"

namespace torchnode {

InferenceJob::InferenceJob(Napi::Env env) {
  napi_value value;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_promise(env, &deferred, &value));
  promise = Napi::Promise(env, value);
}

void AbandonJob(InferenceJob* job) { delete job; }

bool CompletionChannel::Begin() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (open_) ++running_;
  return open_;
}

void CompletionChannel::End(InferenceJob* job) {
  std::lock_guard<std::mutex> lock(mutex_);
  --running_;
  if (!open_ || queue_.NonBlockingCall(job) != napi_ok) AbandonJob(job);
  idle_.notify_all();
}

void CompletionChannel::Close() {
  std::unique_lock<std::mutex> lock(mutex_);
  open_ = false;
  idle_.wait(lock, [this] { return running_ == 0; });
}

namespace {

Error ErrorFromUnknown(const std::exception* e) {
  return Error("ERR_FORWARD", e ? e->what() : "unknown C++ exception");
}

// Settles with `value` through the C API, which throws nothing. False when N-API refused.
bool Settle(napi_env env, InferenceJob* job, bool resolve, napi_value value) {
  napi_status status =
      resolve ? napi_resolve_deferred(env, job->deferred, value) : napi_reject_deferred(env, job->deferred, value);
  if (status != napi_ok) return false;
  job->deferred = nullptr;
  return true;
}

// The last resort: a plain Error with a code, made with the C API.
void RejectPlainly(napi_env env, InferenceJob* job, const std::string& code, const std::string& message) {
  napi_value code_value, message_value, error;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  if (napi_create_string_utf8(env, code.data(), code.size(), &code_value) == napi_ok &&
      napi_create_string_utf8(env, message.data(), message.size(), &message_value) == napi_ok &&
      napi_create_error(env, code_value, message_value, &error) == napi_ok) {
    Settle(env, job, false, error);
  }
}

// The value the promise settles with: the error (made with the library's class), undefined for a dispose,
// or the outputs as JavaScript tensors. May throw.
napi_value MakeValue(Napi::Env env, Addon* addon, InferenceJob* job, bool* resolve) {
  if (job->error) {
    *resolve = false;
    return addon->MakeError(env, *job->error);
  }
  *resolve = true;
  if (job->dispose) return env.Undefined();
  addon->InjectedFault(Fault::kOutputConversion);
  return ResultToJs(env, job->result);
}

}  // namespace

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
    job->error = std::make_unique<Error>(ErrorFromUnknown(&e));
  } catch (...) {
    job->error = std::make_unique<Error>(ErrorFromUnknown(nullptr));
  }
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
  std::string failure;
  try {
    bool resolve = false;
    napi_value value = MakeValue(env, addon, job.get(), &resolve);
    if (Settle(env, job.get(), resolve, value)) {
      napi_close_handle_scope(env, scope);
      return;
    }
    failure = "N-API refused to settle the promise";
  } catch (const Napi::Error& e) {
    failure = e.Message();
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown C++ exception";
  }
  if (job->deferred != nullptr) {
    if (job->error) {
      RejectPlainly(env, job.get(), job->error->code(),
                    std::string(job->error->what()) + " (the error class failed: " + failure + ")");
    } else {
      RejectPlainly(env, job.get(), "ERR_OUTPUT_CONVERSION",
                    "Cannot hand the forward's outputs to JavaScript: " + failure);
    }
  }
  napi_close_handle_scope(env, scope);
}

}  // namespace torchnode
