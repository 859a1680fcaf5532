#include "torch_errors.h"

#include <c10/util/Exception.h>
#include <torch/version.h>

#include <sstream>
#include <vector>

namespace torchnode {

namespace {

std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t start = line.find_first_not_of(" \t\r");
    if (start != std::string::npos) lines.push_back(line.substr(start));
  }
  return lines;
}

}  // namespace

std::string Summarize(const std::string& text) {
  std::vector<std::string> lines = NonEmptyLines(text);
  if (lines.empty()) return "unknown LibTorch error";
  if (lines.front().rfind("The following operation failed in the TorchScript interpreter", 0) == 0) {
    return lines.back();
  }
  return lines.front();
}

std::string LibTorchVersion() { return TORCH_VERSION; }

std::string MessageOf(const std::exception& e) {
  if (auto* c10e = dynamic_cast<const c10::Error*>(&e)) return c10e->what_without_backtrace();
  return e.what();
}

}  // namespace torchnode
