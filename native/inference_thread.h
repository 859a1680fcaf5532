// The long-lived threads that run the addon's forwards, each in the order they were asked for.
// Why not the libuv pool: each pool thread that runs ATen gets an OpenMP team of its own, and on a
// small machine those teams spin against each other (toolchain-notes.md: 27.8 ms from the pool against
// 16.2 ms on one dedicated thread); it also leaves the pool to sharp and the file system. A FIFO thread
// also gives dispose() its meaning: a job posted after the forwards in flight runs after them.
//
// There is one shared thread for the process (started on first use, alive until the process exits), and a
// model may have one of its own (load option inferenceThread), which ends after the model is freed. Each
// thread that runs ATen has its own OpenMP team and its own at::set_num_threads: two models on two threads
// run at once. libgomp stops spinning between parallel regions in EVERY team once it manages more threads
// than the machine has cores, so the library gives a model its own thread by default only when its
// threads are fewer than the cores (src/torch/model.ts).
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>

namespace torchnode {

class InferenceThread {
 public:
  // The process's shared thread (started on first use, never ends: see StopAllInferenceThreadsForExit).
  // Both throw std::system_error when no thread can be started (a limit on threads: ulimit -u, a pids cgroup).
  static std::shared_ptr<InferenceThread> Shared();
  // A new thread of its own for one model; it ends once Finish() was called and its queue is empty.
  static std::shared_ptr<InferenceThread> Start();

  // Queues `job`. Jobs must not throw; they run one at a time, first in, first out.
  void Post(std::function<void()> job);
  // No job will be posted after this (the model's release was the last): the thread ends after its queue.
  // Does nothing on the shared thread.
  void Finish();

  bool IsThisThread() const;
  bool shared() const { return shared_; }

  struct State;  // inference_thread.cc

 private:
  InferenceThread(std::shared_ptr<State> state, bool shared) : state_(std::move(state)), shared_(shared) {}
  std::shared_ptr<State> state_;
  bool shared_;
};

// Whether the calling thread is one of the inference threads.
bool OnInferenceThread();

// Whether the process is exiting (StopAllInferenceThreadsForExit was called): queued jobs will never run.
bool InferenceThreadsStopping();

// The inference threads running now (the shared one once started, and each model's own): for tests.
int LiveInferenceThreads();

// Runs `work` on `thread`, after the jobs queued before it, and waits for it; returns its result or
// rethrows its exception. For LibTorch work outside a forward that runs ATen's parallel kernels, such as
// optimize_for_inference at load (freezing folds weights by running operators): run on a libuv thread, it
// would give that thread an OpenMP team of its own, for good.
// `work` must own what it uses (capture by value or shared_ptr): when the process exits meanwhile, the job is
// dropped or finishes on its own, and this throws instead of waiting for ever (a libuv thread that never
// returns would hold the exit). Throws std::logic_error when called from an inference thread, which might
// wait for itself.
template <typename Work>
auto RunOnInferenceThread(InferenceThread& thread, Work work) -> decltype(work()) {
  if (OnInferenceThread()) throw std::logic_error("RunOnInferenceThread called from an inference thread");
  auto task = std::make_shared<std::packaged_task<decltype(work())()>>(std::move(work));
  std::future<decltype(work())> result = task->get_future();
  thread.Post([task]() { (*task)(); });  // a packaged_task keeps the exception for the future
  while (result.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (InferenceThreadsStopping()) throw std::runtime_error("the process is exiting");
  }
  return result.get();
}

// Called as the process exits (the library does it on process 'exit' in the main thread): on every inference
// thread, waits for the running job, then starts no other, so that exit() never destroys LibTorch under a
// running forward. Waits `timeout_ms` at most in all: returns false if a job is still running then (the
// caller must then leave without running exit()'s destructors: see the library's exit handler).
bool StopAllInferenceThreadsForExit(int timeout_ms);

}  // namespace torchnode
