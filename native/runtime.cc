#include "runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/cuda.h>

#include <atomic>

#include "error.h"
#include "script_model.h"
#include "torch_errors.h"

namespace torchnode {

namespace {

std::atomic<int> probes{0};

// CUDA's driver API has a stable C ABI, so the device name needs no CUDA headers at build time.
std::string CudaDeviceName(int index) {
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (lib == nullptr) return "";
  using InitFn = int (*)(unsigned int);
  using DeviceGetFn = int (*)(int*, int);
  using GetNameFn = int (*)(char*, int, int);
  auto cu_init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto cu_device_get = reinterpret_cast<DeviceGetFn>(dlsym(lib, "cuDeviceGet"));
  auto cu_device_get_name = reinterpret_cast<GetNameFn>(dlsym(lib, "cuDeviceGetName"));
  char name[256] = {0};
  int device = 0;
  if (cu_init && cu_device_get && cu_device_get_name && cu_init(0) == 0 && cu_device_get(&device, index) == 0 &&
      cu_device_get_name(name, sizeof(name) - 1, device) == 0) {
    return name;
  }
  return "";
}

CudaDevices Probe() {
  probes.fetch_add(1);
  CudaDevices devices;
  devices.available = torch::cuda::is_available();
  devices.count = devices.available ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (devices.available) devices.name = CudaDeviceName(0);
  return devices;
}

}  // namespace

const CudaDevices& Cuda() {
  static const CudaDevices devices = Probe();  // thread-safe, once
  return devices;
}

int CudaProbeCount() { return probes.load(); }

c10::Device ResolveDevice(const std::string& requested) {
  if (requested == "cpu") return c10::Device(c10::kCPU);
  const bool cuda = Cuda().available;
  if (requested == "auto") return cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  int index = -1;
  if (requested == "cuda") {
    index = 0;
  } else if (requested.rfind("cuda:", 0) == 0 && requested.size() > 5 && requested.size() < 9 &&
             requested.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::stoi(requested.substr(5));
  } else {
    Fail("ERR_INVALID_DEVICE", "Unknown device '" + requested + "': expected auto, cpu, cuda or cuda:N");
  }
  if (!cuda) {
#ifdef TORCH_NODE_WITH_CUDA
    Fail("ERR_CUDA_UNAVAILABLE",
         "Device '" + requested + "' was requested but CUDA is not available (no CUDA device or driver found)");
#else
    Fail("ERR_CUDA_UNAVAILABLE",
         "Device '" + requested + "' was requested but this addon was built against a CPU-only LibTorch " +
             LibTorchVersion() + "; rebuild it against a LibTorch with CUDA (LIBTORCH_DIR or TORCH_PYTHON)");
#endif
  }
  const int count = Cuda().count;
  if (index >= count) {
    Fail("ERR_INVALID_DEVICE",
         "Device '" + requested + "' does not exist: this machine has " + std::to_string(count) + " CUDA device(s)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

RuntimeInfo GetRuntimeInfo() {
  RuntimeInfo info;
  info.libtorch_version = LibTorchVersion();
#ifdef TORCH_NODE_WITH_CUDA
  info.built_with_cuda = true;
#endif
  const CudaDevices& cuda = Cuda();
  info.cuda_available = cuda.available;
  info.cuda_device_count = cuda.count;
  info.cuda_device_name = cuda.name;
  info.default_threads = at::get_num_threads();
  return info;
}

}  // namespace torchnode
