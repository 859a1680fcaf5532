// The C++ floor's command line (floor_options.h).
#include "floor_options.h"

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "floor_errors.h"

namespace floor_bench {

const char kUsage[] =
    "usage: floor --model FILE --inputs DIR [--threads 2] [--warmup 5] [--iters 30] [--no-optimize] [--onednn]\n"
    "             [--in-thread]   (forwards on a thread of their own, as the addon runs them)";

namespace {

int ParseInt(const std::string& flag, const std::string& value, int min) {
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || n < min) {
    throw UsageError(flag + " expects an integer >= " + std::to_string(min) + ", got '" + value + "'");
  }
  return n;
}

}  // namespace

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " expects a value");
      return argv[++i];
    };
    if (arg == "--model") {
      o.model = value();
    } else if (arg == "--inputs") {
      o.inputs = value();
    } else if (arg == "--threads") {
      o.threads = ParseInt(arg, value(), 1);
    } else if (arg == "--warmup") {
      o.warmup = ParseInt(arg, value(), 0);
    } else if (arg == "--iters") {
      o.iters = ParseInt(arg, value(), 1);
    } else if (arg == "--no-optimize") {
      o.optimize = false;
    } else if (arg == "--onednn") {
      o.onednn = true;
    } else if (arg == "--in-thread") {
      o.in_thread = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage << "\n";
      std::exit(0);
    } else {
      throw UsageError("unknown argument '" + arg + "'");
    }
  }
  if (o.model.empty() || o.inputs.empty()) throw UsageError("--model and --inputs are required");
  return o;
}

}  // namespace floor_bench
