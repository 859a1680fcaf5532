// The one long-lived thread that runs every forward of the addon, in the order they were asked for.
// Why not the libuv pool: each pool thread that runs ATen gets an OpenMP team of its own, and on a
// small machine those teams spin against each other (toolchain-notes.md: 27.8 ms from the pool against
// 16.2 ms on one dedicated thread); it also leaves the pool to sharp and the file system. One FIFO
// thread also gives dispose() its meaning: a job posted after the forwards in flight runs after them.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>

namespace torchnode {

// Queues `job` to the inference thread (started on first use, alive until the process exits).
// Jobs must not throw; they run one at a time, first in, first out.
void PostToInferenceThread(std::function<void()> job);

// Whether the calling thread is the inference thread.
bool OnInferenceThread();

// Whether the process is exiting (StopInferenceThreadForExit was called): queued jobs will never run.
bool InferenceThreadStopping();

// Runs `work` on the inference thread, after the jobs queued before it, and waits for it; returns its result
// or rethrows its exception. For LibTorch work outside a forward that runs ATen's parallel kernels, such as
// optimize_for_inference at load (freezing folds weights by running operators): run on a libuv thread, it
// would give that thread an OpenMP team of its own, for good.
// `work` must own what it uses (capture by value or shared_ptr): when the process exits meanwhile, the job is
// dropped or finishes on its own, and this throws instead of waiting for ever (a libuv thread that never
// returns would hold the exit). Throws std::logic_error when called from the inference thread itself, which
// would wait for itself.
template <typename Work>
auto RunOnInferenceThread(Work work) -> decltype(work()) {
  if (OnInferenceThread()) throw std::logic_error("RunOnInferenceThread called from the inference thread");
  auto task = std::make_shared<std::packaged_task<decltype(work())()>>(std::move(work));
  std::future<decltype(work())> result = task->get_future();
  PostToInferenceThread([task]() { (*task)(); });  // a packaged_task keeps the exception for the future
  while (result.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (InferenceThreadStopping()) throw std::runtime_error("the process is exiting");
  }
  return result.get();
}

// Called as the process exits (the library does it on process 'exit' in the main thread): waits for
// the running job, then starts no other, so that exit() never destroys LibTorch under a running forward.
// Waits `timeout_ms` at most: returns false if the job is still running then (the caller must then leave
// without running exit()'s destructors: see the library's exit handler).
bool StopInferenceThreadForExit(int timeout_ms);

}  // namespace torchnode
