#include "inference_thread.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace torchnode {

namespace {

class InferenceThread {
 public:
  InferenceThread() : thread_([this] { Run(); }) {
    // Never joined: the thread waits for work until the process ends. Joining it from a static
    // destructor could race LibTorch's own static destructors at exit.
    thread_.detach();
  }

  void Post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !jobs_.empty(); });
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::thread thread_;
};

}  // namespace

void PostToInferenceThread(std::function<void()> job) {
  // Leaked on purpose (see the destructor note above).
  static InferenceThread* thread = new InferenceThread();
  thread->Post(std::move(job));
}

}  // namespace torchnode
