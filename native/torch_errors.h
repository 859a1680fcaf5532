// LibTorch's error texts made into the addon's one-line messages.
#pragma once

#include <exception>
#include <string>

namespace torchnode {

// LibTorch's first message line; for an error raised inside TorchScript code that line only says
// "The following operation failed in the TorchScript interpreter.", and the real reason is the last line.
std::string Summarize(const std::string& text);

// LibTorch's message without its C++ backtrace.
std::string MessageOf(const std::exception& e);

// The version of the LibTorch the addon was built against, e.g. "1.13.0".
std::string LibTorchVersion();

}  // namespace torchnode
