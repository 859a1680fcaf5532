// A forward or a dispose on its way to the inference thread and back to JavaScript, and the channel that
// brings it back. No LibTorch headers here.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>

#include "js_tensors.h"
#include "script_model.h"

namespace torchnode {

class Addon;

struct InferenceJob {
  // Makes the promise the job will settle (throws Napi::Error if it cannot).
  explicit InferenceJob(Napi::Env env);

  napi_deferred deferred = nullptr;  // null once settled (or handed to N-API to settle)
  Napi::Promise promise;             // to return to the caller, in the scope the job was made in
  std::shared_ptr<ScriptModel> model;
  CopiedInputs inputs;  // the caller's tensors, copied (js_tensors.h); freed as soon as the forward is done
  bool dispose = false;
  ForwardResult result;
  std::unique_ptr<Error> error;
};

// The JavaScript thread's end of a job: settles its promise and frees it. Nothing escapes (it would become
// an uncaught exception, with the promise never settled): when the promise's value cannot be made (the error
// class throws; converting the outputs runs out of memory) the promise rejects with a plain Error that says
// so, with a code; only when the environment itself is going away does nobody get an answer.
void CompleteJob(Napi::Env env, Napi::Function, Addon* addon, InferenceJob* job);

// Settles the job's promise with `value` through N-API's C functions (nothing thrown), once: whatever N-API
// answers, the deferred is its own afterwards.
void SettleJob(napi_env env, InferenceJob* job, bool resolve, napi_value value) noexcept;
using CompletionQueue = Napi::TypedThreadSafeFunction<Addon, InferenceJob, CompleteJob>;

// Forgets a job whose JavaScript environment is gone: nothing of JavaScript's may be touched any more.
void AbandonJob(InferenceJob* job);

// The link between the inference thread and one JavaScript environment, which can end at any moment
// (process.exit(), a worker thread terminated) while jobs are queued or running. At its end, Node frees
// the thread-safe function that brings results back. So an environment cleanup hook closes the channel
// first: after it no job of that environment starts or reports (a job running then is abandoned when it ends;
// it reads no JavaScript memory, its inputs being copies, so the environment need not wait for it).
class CompletionChannel {
 public:
  explicit CompletionChannel(CompletionQueue queue) : queue_(queue) {}

  // Inference thread, before a job: false when the environment is gone (skip the job).
  bool Begin();
  // Inference thread, after a job that Begin() let run: hands it back to JavaScript, or abandons it.
  void End(InferenceJob* job);
  // JavaScript thread, at environment cleanup. Does not wait.
  void Close();

  void Ref(Napi::Env env) { queue_.Ref(env); }
  void Unref(Napi::Env env) { queue_.Unref(env); }

 private:
  std::mutex mutex_;
  bool open_ = true;
  CompletionQueue queue_;
};

// Inference thread: runs the job (a forward, or the release of a model), catching every failure into
// job->error.
void RunJob(InferenceJob* job);

}  // namespace torchnode
