#include "torch_log.h"

#include <c10/util/Exception.h>
#include <torch/version.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>

namespace torchnode {

namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};

// Distinct warnings already shown. Bounded: a message that names shapes differs from input to input, and the
// set must not grow without end in a long-running service; past the bound, new warnings are not shown.
constexpr size_t kMaxDistinct = 256;

class AddonWarningHandler : public c10::WarningHandler {
 public:
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& warning) override { Handle(warning.source_location(), warning.msg()); }
#else
  void process(const c10::SourceLocation& where, const std::string& msg, const bool /*verbatim*/) override {
    Handle(where, msg);
  }
#endif

 private:
  void Handle(const c10::SourceLocation& where, const std::string& msg) {
    const auto level = static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
    if (level == LogLevel::kError) return;
    const char* file = where.file ? where.file : "";
    const char* slash = std::strrchr(file, '/');
    const std::string place = std::string(slash ? slash + 1 : file) + ":" + std::to_string(where.line);
    const char* note = "";
    if (level == LogLevel::kWarn) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (seen_.size() >= kMaxDistinct) {
        if (full_noted_) return;
        full_noted_ = true;
        std::fprintf(stderr,
                     "torchscript-node: LibTorch warning: %zu distinct warnings shown; no more are "
                     "(TORCH_NODE_LOG_LEVEL=info shows them all)\n",
                     kMaxDistinct);
        std::fflush(stderr);
        return;
      }
      if (!seen_.insert(place + " " + msg).second) return;
      if (seen_.size() == 1)
        note =
            " (each distinct LibTorch warning is shown once; TORCH_NODE_LOG_LEVEL=info shows every one, =error none)";
    }
    // One write per warning, so that lines from two threads do not interleave.
    const std::string line = "torchscript-node: LibTorch warning: " + msg + " [" + place + "]" + note + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  std::mutex mutex_;
  std::unordered_set<std::string> seen_;
  bool full_noted_ = false;
};

thread_local bool t_installed = false;

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

void UseAddonWarningHandler() {
  if (t_installed) return;
  t_installed = true;
  static auto* handler = new AddonWarningHandler();  // leaked: threads may warn while the process exits
#if TORCH_VERSION_MAJOR >= 2
  c10::WarningUtils::set_warning_handler(handler);
#else
  c10::Warning::set_warning_handler(handler);
#endif
}

}  // namespace torchnode
