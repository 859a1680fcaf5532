// Which BLAS LibTorch's matrix products run on, and whether they compute right on this CPU. Plain C++ with
// no N-API, like script_model.h.
//
// Why: Debian's LibTorch multiplies matrices with the system's OpenBLAS, which picks a kernel for the CPU at
// start (or the one OPENBLAS_CORETYPE names). Its guess can be slow (on one Xeon it ran its generic kernel,
// 4x slower than SkylakeX), and older OpenBLAS kernels have computed wrong results on some CPUs. So the
// library tries the kernels this CPU can run, each in a child process (the kernel is chosen when OpenBLAS
// loads), checks each one's results against a reference computed here in double precision, and keeps the
// fastest correct one (src/torch/blas-kernel.ts).
#pragma once

#include <string>

namespace torchnode {

struct BlasInfo {
  std::string library;  // "OpenBLAS", "MKL", or "" when unknown
  std::string config;   // openblas_get_config(): "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"
  std::string kernel;   // openblas_get_corename(): "Haswell", "SkylakeX", ...; "" when not OpenBLAS
  std::string path;     // the shared library that holds OpenBLAS, when found
};

BlasInfo GetBlasInfo();

struct BlasCheck {
  int cases = 0;
  // The largest error of any element, relative to the sum of the magnitudes of its products (what float
  // rounding can reach): about 1e-7 for a correct float32 kernel, orders of magnitude more for a wrong one.
  double max_relative_error_float32 = 0;
  double max_relative_error_float64 = 0;
  std::string worst_case;  // e.g. "mm float32 [7, 13] x [13, 5] transposed"
  double gflops = 0;       // float32 matrix products of a BERT-sized layer, with `threads` threads
};

// Runs LibTorch's matrix products (mm, addmm with a transposed weight as linear layers do, bmm as attention
// does) on seeded inputs of many shapes, small ones included, against a plain double-precision reference, then
// times a BERT-sized product. Blocking: a second or so.
BlasCheck CheckBlas(int threads);

}  // namespace torchnode
