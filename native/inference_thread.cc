#include "inference_thread.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace torchnode {

namespace {

class InferenceThread {
 public:
  InferenceThread() : thread_([this] { Run(); }) {
    // Never joined: the thread waits for work until the process ends (see StopForExit).
    thread_.detach();
  }

  bool IsThisThread() const { return std::this_thread::get_id() == id_; }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

  static InferenceThread& Instance() {
    static InferenceThread* thread = new InferenceThread();  // leaked on purpose: see StopForExit
    return *thread;
  }

  void Post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    changed_.notify_all();
  }

  // A job still running when the process exits (process.exit() during a forward) would run on while
  // exit() destroys LibTorch's static state under it, and crash. So before exit: wait for the running
  // job, and start no other.
  bool StopForExit(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mutex_);
    stopping_ = true;
    if (!changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return !busy_; })) return false;
    // The queued jobs are dropped without running or destroying them: their destructors would free
    // models (LibTorch's memory) while the process is going away.
    new std::deque<std::function<void()>>(std::move(jobs_));
    return true;
  }

 private:
  void Run() {
    id_ = std::this_thread::get_id();
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return !jobs_.empty() && !stopping_; });
        job = std::move(jobs_.front());
        jobs_.pop_front();
        busy_ = true;
      }
      job();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        busy_ = false;
      }
      changed_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false;
  bool stopping_ = false;
  std::atomic<std::thread::id> id_{};
  std::thread thread_;
};

}  // namespace

void PostToInferenceThread(std::function<void()> job) { InferenceThread::Instance().Post(std::move(job)); }

bool StopInferenceThreadForExit(int timeout_ms) { return InferenceThread::Instance().StopForExit(timeout_ms); }

bool OnInferenceThread() { return InferenceThread::Instance().IsThisThread(); }

bool InferenceThreadStopping() { return InferenceThread::Instance().Stopping(); }

}  // namespace torchnode
