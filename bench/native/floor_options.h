// The C++ floor's command line.
#pragma once

#include <string>

namespace floor_bench {

struct Options {
  std::string model;
  std::string inputs;
  int threads = 2;
  int warmup = 5;
  int iters = 30;
  bool optimize = true;
  bool onednn = false;
  // Run the forwards on a second thread, as the addon does on its inference thread (to tell the cost of
  // that from the cost of Node).
  bool in_thread = false;
};

extern const char kUsage[];

// The options of argv; --help prints kUsage and exits 0; throws UsageError on anything else it cannot use.
Options ParseArgs(int argc, char** argv);

}  // namespace floor_bench
