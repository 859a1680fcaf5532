// A second, tiny addon without LibTorch: hands the memory that the C allocator keeps after large frees back
// to the operating system. Loading a model (LibTorch's or ONNX Runtime's) parses hundreds of megabytes into
// temporary buffers; glibc keeps the freed pages of its heaps for reuse, so a service that loaded a 530 MB
// model holds about 200 MB more than it uses until it exits. malloc_trim(0) returns them (the service calls it
// after each model load and after a replaced model is freed). Elsewhere than glibc it does nothing.
//
//   releaseFreeMemory() -> boolean   true when memory was returned to the system
//   limitArenas(n) -> boolean        at most n malloc arenas (M_ARENA_MAX): glibc gives each thread that
//                                    allocates at once an arena of its own, up to 8 per core, and each keeps its
//                                    own freed pages; a service with a dozen threads fragments less with a few
//   supported() -> boolean           false where there is no malloc_trim (not glibc)
#include <napi.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value LimitArenas(const Napi::CallbackInfo& info) {
  const double n = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(n >= 1 && n <= 1024 && n == static_cast<int>(n))) {
    throw Napi::RangeError::New(info.Env(), "Expected an integer between 1 and 1024 for the arena count");
  }
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), mallopt(M_ARENA_MAX, static_cast<int>(n)) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Value Supported(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("releaseFreeMemory", Napi::Function::New(env, ReleaseFreeMemory, "releaseFreeMemory"));
  exports.Set("limitArenas", Napi::Function::New(env, LimitArenas, "limitArenas"));
  exports.Set("supported", Napi::Function::New(env, Supported, "supported"));
  return exports;
}

}  // namespace

NODE_API_MODULE(torch_node_memory, Init)
