#include "inference_thread.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

namespace torchnode {

struct InferenceThread::State {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::function<void()>> jobs;
  bool busy = false;
  bool finishing = false;         // Finish() was called: end when the queue is empty
  std::atomic<size_t> queued{0};  // jobs.size(), for the spin after a job (Run) to read without the mutex
  std::atomic<std::thread::id> id{};
};

namespace {

thread_local bool on_inference_thread = false;

// How long a thread looks for its next job before it sleeps, right after a job. A caller that awaits each forward
// asks for the next one some 50-100 us after the last one ended (the hop back to JavaScript, the promise, the next
// call), and waking a sleeping thread on this kind of VM takes about 50 us more when the machine is otherwise
// idle. Measured on the 2-core VM, a tiny MLP's forward (batch 1, median): 0.15-0.17 ms without the spin, 0.05-0.08
// ms with 150 us (Python torch: 0.011-0.023 ms); mobilenet_v3_small at 2 threads unchanged (5-6 ms). Bounded and
// only after a job: an idle thread sleeps, and at most this much CPU is spent per forward.
constexpr std::chrono::microseconds kSpinAfterJob{150};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Every inference thread, for the exit. Leaked on purpose: exit() must not destroy it while threads run.
struct Registry {
  std::mutex mutex;
  bool stopping = false;  // StopAllInferenceThreadsForExit was called: no thread runs another job or ends
  struct Entry {
    std::shared_ptr<InferenceThread::State> state;
    std::thread thread;  // joinable for a model's own thread; the shared one is detached
    bool ended = false;  // its loop returned: join it (quick) before the next start or at exit
  };
  std::list<Entry> entries;
  int live = 0;

  static Registry& Get() {
    static Registry* registry = new Registry();
    return *registry;
  }

  // Joins the threads whose loop has returned (they are only running their thread-local destructors, among them
  // libgomp's, which ends their OpenMP team). Called with `mutex` held.
  void JoinEnded() {
    for (auto it = entries.begin(); it != entries.end();) {
      if (it->ended) {
        if (it->thread.joinable()) it->thread.join();
        it = entries.erase(it);
      } else {
        ++it;
      }
    }
  }
};

std::atomic<bool> g_stopping{false};  // Registry::stopping, for the loops to read without the registry's lock

// The thread's loop: one job at a time, in order. Returns once Finish() was called and the queue is empty,
// unless the process is exiting: then it starts nothing and never returns (see StopAll...).
void Run(const std::shared_ptr<InferenceThread::State>& state, bool shared) {
  // Named, so that top -H and /proc/PID/task/*/comm tell them apart; the OpenMP threads a team starts from here
  // inherit the name.
  pthread_setname_np(pthread_self(), shared ? "torch-shared" : "torch-own");
  on_inference_thread = true;
  state->id = std::this_thread::get_id();
  bool after_job = false;
  for (;;) {
    if (after_job) {
      const auto until = std::chrono::steady_clock::now() + kSpinAfterJob;
      while (state->queued.load(std::memory_order_acquire) == 0 && !g_stopping.load(std::memory_order_relaxed) &&
             std::chrono::steady_clock::now() < until) {
        CpuRelax();
      }
    }
    after_job = true;
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(state->mutex);
      state->changed.wait(lock, [&] { return !g_stopping.load() && (!state->jobs.empty() || state->finishing); });
      if (state->jobs.empty()) break;  // finishing
      job = std::move(state->jobs.front());
      state->jobs.pop_front();
      state->queued.store(state->jobs.size(), std::memory_order_release);
      state->busy = true;
    }
    job();
    job = nullptr;  // what the job owned (a model being freed) goes before the thread says it is idle
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->busy = false;
    }
    state->changed.notify_all();
  }
  Registry& registry = Registry::Get();
  std::unique_lock<std::mutex> lock(registry.mutex);
  if (registry.stopping) {
    // The process is exiting: this thread's thread-local destructors (its OpenMP team's) must not run beside
    // exit()'s. It waits for ever, as the others do.
    lock.unlock();
    for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
  }
  for (Registry::Entry& entry : registry.entries) {
    if (entry.state == state) entry.ended = true;
  }
  --registry.live;
}

std::shared_ptr<InferenceThread::State> Launch(bool shared) {
  auto state = std::make_shared<InferenceThread::State>();
  Registry& registry = Registry::Get();
  std::lock_guard<std::mutex> lock(registry.mutex);
  registry.JoinEnded();
  // The entry first, then the thread into it: creating the thread throws std::system_error at a limit on threads
  // (ulimit -u, a pids cgroup), and then nothing is left behind; and no joinable std::thread is ever dropped.
  registry.entries.push_back({state, std::thread(), false});
  try {
    registry.entries.back().thread = std::thread([state, shared] { Run(state, shared); });
  } catch (...) {
    registry.entries.pop_back();
    throw;
  }
  if (shared) registry.entries.back().thread.detach();  // never joined: it waits for work until the process ends
  ++registry.live;
  return state;
}

}  // namespace

std::shared_ptr<InferenceThread> InferenceThread::Shared() {
  // Leaked on purpose: see StopAllInferenceThreadsForExit.
  static auto* shared = new std::shared_ptr<InferenceThread>(new InferenceThread(Launch(true), true));
  return *shared;
}

std::shared_ptr<InferenceThread> InferenceThread::Start() {
  return std::shared_ptr<InferenceThread>(new InferenceThread(Launch(false), false));
}

void InferenceThread::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->jobs.push_back(std::move(job));
    state_->queued.store(state_->jobs.size(), std::memory_order_release);
  }
  state_->changed.notify_all();
}

void InferenceThread::Finish() {
  if (shared_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->finishing = true;
  }
  state_->changed.notify_all();
}

bool InferenceThread::IsThisThread() const { return std::this_thread::get_id() == state_->id.load(); }

bool OnInferenceThread() { return on_inference_thread; }

bool InferenceThreadsStopping() { return g_stopping.load(); }

int LiveInferenceThreads() {
  Registry& registry = Registry::Get();
  std::lock_guard<std::mutex> lock(registry.mutex);
  return registry.live;
}

// A job still running when the process exits (process.exit() during a forward) would run on while exit()
// destroys LibTorch's static state under it, and crash. So before exit: on every thread, wait for the
// running job, and start no other.
bool StopAllInferenceThreadsForExit(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  Registry& registry = Registry::Get();
  std::lock_guard<std::mutex> registry_lock(registry.mutex);
  registry.stopping = true;
  g_stopping = true;
  // A thread whose loop has returned only runs its thread-local destructors now: let them end first.
  registry.JoinEnded();
  bool all_idle = true;
  for (Registry::Entry& entry : registry.entries) {
    InferenceThread::State& state = *entry.state;
    std::unique_lock<std::mutex> lock(state.mutex);
    state.changed.notify_all();  // a waiting loop sees the stop
    if (!state.changed.wait_until(lock, deadline, [&] { return !state.busy; })) {
      all_idle = false;
      continue;
    }
    // The queued jobs are dropped without running or destroying them: their destructors would free
    // models (LibTorch's memory) while the process is going away.
    new std::deque<std::function<void()>>(std::move(state.jobs));
  }
  return all_idle;
}

}  // namespace torchnode
