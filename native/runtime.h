// What this process's LibTorch offers: its version, its CUDA devices (probed once), and the device a load
// asks for, checked against them.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace torchnode {

struct CudaDevices {
  bool available = false;  // a CUDA device is usable (always false with a CPU-only LibTorch)
  int count = 0;
  std::string name;  // of device 0, from the driver; "" when unknown
};

// Probed on first use, from whichever thread gets there first, and remembered: probing loads the CUDA
// driver (hundreds of milliseconds on a GPU machine), and devices do not come and go under a running
// process. Every later runtimeInfo() and load() reads the answer.
const CudaDevices& Cuda();

// "auto", "cpu", "cuda", "cuda:N" -> the device; throws Error (ERR_INVALID_DEVICE, ERR_CUDA_UNAVAILABLE).
c10::Device ResolveDevice(const std::string& requested);

}  // namespace torchnode
