// The C++ floor's two kinds of failure: a command line it cannot use (exit 2, with the usage) and a model or
// an input it cannot use (exit 1).
#pragma once

#include <stdexcept>

namespace floor_bench {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace floor_bench
