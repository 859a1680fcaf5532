// The benchmark's floor: a plain C++ program that runs a TorchScript model through the addon's own LibTorch
// layer (native/script_model.{h,cc}: load, eval, freeze + optimize_for_inference on CPU, forward in
// c10::InferenceMode with a set thread count), with no Node.js and no N-API around it. Whatever the addon
// adds on top of this (N-API, its inference thread, promises) is the difference from this program's times.
//
//   floor --model FILE --inputs DIR [--threads 2] [--warmup 5] [--iters 30] [--no-optimize] [--onednn]
//         [--in-thread]
//
// DIR holds spec.json, {"inputs": [{"name", "dtype", "shape", "file"}, ...]}, and one file of raw
// little-endian C-contiguous data per input (dtypes float32, float64, int32, int64). The inputs are made
// once, before any timing (at::from_blob + clone); each timed forward is one call of
// ScriptModel::Forward, measured with std::chrono::steady_clock. stdout gets one JSON line at the end;
// progress goes to stderr. Exit 1 on a model or input error, 2 on a usage error.
//
// --onednn turns on oneDNN Graph (LLGA) fusion. That path calls LibTorch directly, not through the addon's
// layer, because it needs torch::jit::freeze alone: LLGA fails on optimize_for_inference's graph (torch 2.15:
// "vector::_M_range_check" at the first forward), and PyTorch's recipe for it is freeze then fuse. So with
// --onednn, "optimized" means frozen (the JSON's "optimization" says which: freeze+optimize_for_inference,
// freeze, none). bench/build-floor.mjs defines FLOOR_WITH_ONEDNN_GRAPH=1 when the LibTorch it builds against
// has the LLGA fuser; without it (Debian's LibTorch 1.13), --onednn fails with a message that says so.
//
// The parts: floor_options (the command line), floor_inputs (the inputs folder, read with floor_json),
// floor_models (the addon's ScriptModel, or LLGA); this file times the forwards and writes the JSON line.
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "floor_errors.h"
#include "floor_inputs.h"
#include "floor_json.h"
#include "floor_models.h"
#include "floor_options.h"
#include "script_model.h"

namespace floor_bench {
namespace {

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

int Run(const Options& o) {
  const std::string version = torchnode::GetRuntimeInfo().libtorch_version;
  const bool mkldnn = at::hasMKLDNN();
  if (o.onednn) RequireOneDnnGraph(version, mkldnn);
  at::set_num_threads(o.threads);

  std::unique_ptr<Model> model;
  double load_ms = 0;
  double warmup_ms = 0;
  std::vector<double> times;
  times.reserve(static_cast<size_t>(o.iters));
  // The inputs, the load and the forwards, on one thread. With --in-thread that is a thread of its own, as in the
  // addon, and all of it must be there: making the inputs (a clone) and optimize_for_inference run ATen's
  // parallel kernels, and run from the main thread they left that thread an OpenMP team of its own; with more
  // OpenMP threads than cores, libgomp then stops spinning between parallel regions in every team (its throttled
  // spin count), and the forwards took twice as long (2 threads, the demo model: 18-24 ms against 8-11 on the
  // main thread, 2026-12-08). The addon loads and runs a model on the model's own thread for the same reason.
  auto load_and_time = [&]() {
    at::set_num_threads(o.threads);
    const std::vector<Input> inputs = ReadInputs(o.inputs);
    auto start = std::chrono::steady_clock::now();
    model = LoadModel(o, inputs);
    load_ms = MsSince(start);
    std::cerr << "floor: LibTorch " << version << ", " << o.threads << " thread(s), " << model->Schema() << ", "
              << model->Optimization() << (o.onednn ? ", oneDNN Graph fusion" : "") << "; loaded in " << load_ms
              << " ms\n";
    const std::vector<std::string> names = model->InputNames();
    if (names.size() != inputs.size()) {
      std::cerr << "floor: warning: the model's forward takes " << names.size() << " input(s), " << o.inputs
                << "/spec.json gives " << inputs.size() << "\n";
    }
    for (size_t i = 0; i < inputs.size() && i < names.size(); ++i) {
      if (inputs[i].name != names[i]) {
        std::cerr << "floor: warning: input " << i << " is '" << inputs[i].name << "' in spec.json but '" << names[i]
                  << "' in the model (inputs are passed by position)\n";
      }
    }

    auto begin = std::chrono::steady_clock::now();
    for (int i = 0; i < o.warmup; ++i) model->Forward();
    warmup_ms = MsSince(begin);
    for (int i = 0; i < o.iters; ++i) {
      begin = std::chrono::steady_clock::now();
      model->Forward();
      times.push_back(MsSince(begin));
    }
  };
  if (o.in_thread) {
    std::exception_ptr failure;
    std::thread worker([&]() {
      try {
        load_and_time();
      } catch (...) {
        failure = std::current_exception();
      }
    });
    worker.join();
    if (failure) std::rethrow_exception(failure);
  } else {
    load_and_time();
  }
  const Summary out = model->Last();
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  std::cerr << "floor: warm-up " << o.warmup << " in " << warmup_ms << " ms; " << o.iters << " timed, median "
            << sorted[(sorted.size() - 1) / 2] << " ms\n";

  std::ostringstream json;
  json << "{\"runner\": \"cpp\", \"libtorch\": " << JsonString(version) << ", \"threads\": " << at::get_num_threads()
       << ", \"optimized\": " << (model->Optimization() != "none" ? "true" : "false")
       << ", \"optimization\": " << JsonString(model->Optimization())
       << ", \"onednn\": " << (o.onednn ? "true" : "false") << ", \"in_thread\": " << (o.in_thread ? "true" : "false")
       << ", \"mkldnn\": " << (mkldnn ? "true" : "false") << ", \"warmup\": " << o.warmup
       << ", \"load_ms\": " << JsonNumber(load_ms) << ", \"times_ms\": [";
  for (size_t i = 0; i < times.size(); ++i) json << (i ? ", " : "") << JsonNumber(times[i]);
  json << "], \"output_sum\": " << JsonNumber(out.sum) << ", \"output_first\": [";
  for (size_t i = 0; i < out.first.size(); ++i) json << (i ? ", " : "") << JsonNumber(out.first[i]);
  json << "], \"output_shape\": [";
  for (size_t i = 0; i < out.shape.size(); ++i) json << (i ? ", " : "") << out.shape[i];
  json << "]}";
  std::cout << json.str() << std::endl;
  return 0;
}

}  // namespace
}  // namespace floor_bench

int main(int argc, char** argv) {
  try {
    return floor_bench::Run(floor_bench::ParseArgs(argc, argv));
  } catch (const floor_bench::UsageError& e) {
    std::cerr << "floor: " << e.what() << "\n" << floor_bench::kUsage << "\n";
    return 2;
  } catch (const torchnode::Error& e) {
    std::cerr << "floor: " << e.code() << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "floor: " << e.what() << "\n";
    return 1;
  }
}