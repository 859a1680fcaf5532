#include "blas.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace torchnode {

BlasInfo GetBlasInfo() {
  BlasInfo info;
  using Text = char* (*)();
  auto config = reinterpret_cast<Text>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  auto corename = reinterpret_cast<Text>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (config != nullptr) {
    info.library = "OpenBLAS";
    info.config = config();
    if (corename != nullptr) info.kernel = corename();
    Dl_info where{};
    if (dladdr(reinterpret_cast<void*>(config), &where) != 0 && where.dli_fname != nullptr) info.path = where.dli_fname;
  } else if (at::hasMKL()) {
    info.library = "MKL";
  }
  return info;
}

namespace {

// C = op(A) x op(B) in double, and the sum of |a||b| of each element (the scale of its rounding error).
void Reference(const at::Tensor& a, const at::Tensor& b, std::vector<double>* c, std::vector<double>* scale) {
  at::Tensor a64 = a.to(at::kDouble).contiguous(), b64 = b.to(at::kDouble).contiguous();
  const int64_t m = a64.size(0), k = a64.size(1), n = b64.size(1);
  const double* pa = a64.data_ptr<double>();
  const double* pb = b64.data_ptr<double>();
  c->assign(m * n, 0.0);
  scale->assign(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t p = 0; p < k; ++p) {
      const double x = pa[i * k + p];
      for (int64_t j = 0; j < n; ++j) {
        (*c)[i * n + j] += x * pb[p * n + j];
        (*scale)[i * n + j] += std::abs(x * pb[p * n + j]);
      }
    }
  }
}

double RelativeError(const at::Tensor& got, const at::Tensor& a, const at::Tensor& b) {
  std::vector<double> want, scale;
  Reference(a, b, &want, &scale);
  at::Tensor g = got.to(at::kDouble).contiguous();
  const double* pg = g.data_ptr<double>();
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::abs(pg[i] - want[i]) / (scale[i] + 1e-30);
    if (!std::isfinite(pg[i])) return INFINITY;
    worst = std::max(worst, err);
  }
  return worst;
}

std::string Shape(const at::Tensor& t) {
  return "[" + std::to_string(t.size(0)) + ", " + std::to_string(t.size(1)) + "]";
}

}  // namespace

BlasCheck CheckBlas(int threads) {
  c10::InferenceMode guard;
  if (threads > 0) at::set_num_threads(threads);
  BlasCheck result;
  at::manual_seed(20261201);
  double worst_ratio = -1;
  auto record = [&](double err, bool float64, const std::string& what) {
    ++result.cases;
    double& worst = float64 ? result.max_relative_error_float64 : result.max_relative_error_float32;
    worst = std::max(worst, err);
    // The worst case, each precision measured against what a correct kernel reaches in it.
    const double ratio = err / (float64 ? 1e-15 : 1e-7);
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      result.worst_case = what;
    }
  };
  // (m, k, n): single rows (a batch of one through a linear layer), tiny and odd shapes (small-matrix
  // kernels), the shapes of BERT-base and of the fusion layers, and sizes just off the kernels' blocking.
  const int64_t shapes[][3] = {{1, 768, 768},  {1, 512, 101},  {2, 3, 4},     {7, 13, 5},     {16, 16, 16},
                               {31, 33, 17},   {64, 64, 64},   {65, 127, 63}, {128, 768, 96}, {129, 768, 64},
                               {128, 96, 512}, {255, 257, 33}, {4, 3072, 48}, {8, 512, 256}};
  for (const auto& s : shapes) {
    const int64_t m = s[0], k = s[1], n = s[2];
    for (auto dtype : {at::kFloat, at::kDouble}) {
      const bool f64 = dtype == at::kDouble;
      const std::string name = std::string(f64 ? "float64" : "float32") + " ";
      at::Tensor a = at::randn({m, k}, at::TensorOptions().dtype(dtype));
      at::Tensor b = at::randn({k, n}, at::TensorOptions().dtype(dtype));
      record(RelativeError(at::mm(a, b), a, b), f64, "mm " + name + Shape(a) + " x " + Shape(b));
      // linear layers: x W^T + bias, the weight stored [n, k]
      at::Tensor w = at::randn({n, k}, at::TensorOptions().dtype(dtype));
      at::Tensor bias = at::zeros({n}, at::TensorOptions().dtype(dtype));
      record(RelativeError(at::addmm(bias, a, w.t()), a, w.t()), f64,
             "addmm " + name + Shape(a) + " x " + Shape(w) + "^T");
    }
  }
  // attention: batched products, one of them against a transposed operand
  {
    at::Tensor q = at::randn({12, 128, 64}), kt = at::randn({12, 64, 128});
    at::Tensor scores = at::bmm(q, kt);
    for (int64_t h = 0; h < 12; h += 5)
      record(RelativeError(scores[h], q[h], kt[h]), false, "bmm float32 [12, 128, 64] x [12, 64, 128]");
    at::Tensor v = at::randn({12, 128, 64});
    at::Tensor context = at::bmm(at::softmax(scores, -1), v);
    for (int64_t h = 0; h < 12; h += 5)
      record(RelativeError(context[h], at::softmax(scores, -1)[h], v[h]), false,
             "bmm float32 [12, 128, 128] x [12, 128, 64]");
  }
  // speed: one BERT-base feed-forward product, [128, 768] x [768, 3072], for about 0.3 s after a warm-up
  at::Tensor x = at::randn({128, 768}), w = at::randn({3072, 768});
  for (int i = 0; i < 3; ++i) at::mm(x, w.t());
  const auto start = std::chrono::steady_clock::now();
  int runs = 0;
  double seconds = 0;
  do {
    at::mm(x, w.t());
    ++runs;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (seconds < 0.3);
  result.gflops = 2.0 * 128 * 768 * 3072 * runs / seconds / 1e9;
  return result;
}

}  // namespace torchnode
