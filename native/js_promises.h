// Promises settled, and errors made, with N-API's C functions, which throw nothing: for the places where a
// failure must still end in a settled promise (making the library's error failed, converting outputs failed).
#pragma once

#include <node_api.h>

#include <string>

namespace torchnode {

// Clears an exception left pending by a JavaScript call that threw, so that the next N-API call can run.
void ClearPendingException(napi_env env) noexcept;

// A plain Error with `code`; undefined when not even that can be made (the environment is stopping).
napi_value PlainError(napi_env env, const std::string& code, const std::string& message) noexcept;

// Resolves or rejects `*deferred` with `value` (undefined when null), once: whatever N-API answers, the
// deferred is N-API's afterwards (it frees it even when settling then fails), so *deferred becomes null.
void SettlePromise(napi_env env, napi_deferred* deferred, bool resolve, napi_value value) noexcept;

}  // namespace torchnode
