// Promises settled, and errors made, with N-API's C functions, which throw nothing: for the places where a
// failure must still end in a settled promise (making the library's error failed, converting outputs failed).
#pragma once

#include <node_api.h>

#include <exception>
#include <optional>
#include <string>

namespace torchnode {

// Clears an exception left pending by a JavaScript call that threw, so that the next N-API call can run.
void ClearPendingException(napi_env env) noexcept;

// A plain Error with `code`; undefined when not even that can be made (the environment is stopping).
napi_value PlainError(napi_env env, const std::string& code, const std::string& message) noexcept;

// Resolves or rejects `*deferred` with `value` (undefined when null), once: whatever N-API answers, the
// deferred is N-API's afterwards (it frees it even when settling then fails), so *deferred becomes null.
void SettlePromise(napi_env env, napi_deferred* deferred, bool resolve, napi_value value) noexcept;

// Runs `fn`: nothing when it returns, else what it threw, as text (a Napi::Error is a std::exception whose
// what() is its message). For the steps whose failure must still end in a settled promise.
template <typename Fn>
std::optional<std::string> FailureOf(Fn&& fn) noexcept {
  try {
    fn();
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("unknown C++ exception");
  }
}

}  // namespace torchnode
