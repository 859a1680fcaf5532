// What LibTorch's warnings (TORCH_WARN, c10::Warning) become: by default each distinct warning is written once
// per process to stderr, as Python shows it once; a model whose forward warns on every call (mobilenet_v3_small
// optimised: Resize.cpp) would otherwise fill the log. The level is the library's logLevel / TORCH_NODE_LOG_LEVEL.
// No LibTorch types in this header.
#pragma once

namespace torchnode {

enum class LogLevel {
  kError = 0,  // LibTorch's warnings are not shown
  kWarn = 1,   // each distinct warning once per process (the default)
  kInfo = 2,   // every warning, every time (LibTorch's own behaviour)
};

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// c10's warning handler is per thread: every thread that runs LibTorch for the addon (the inference threads,
// the loading threads) calls this before it does. Cheap after the first call on a thread.
void UseAddonWarningHandler();

}  // namespace torchnode
