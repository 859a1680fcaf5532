#include "js_promises.h"

namespace torchnode {

void ClearPendingException(napi_env env) noexcept {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

napi_value PlainError(napi_env env, const std::string& code, const std::string& message) noexcept {
  ClearPendingException(env);
  napi_value code_value, message_value, error;
  if (napi_create_string_utf8(env, code.data(), code.size(), &code_value) == napi_ok &&
      napi_create_string_utf8(env, message.data(), message.size(), &message_value) == napi_ok &&
      napi_create_error(env, code_value, message_value, &error) == napi_ok) {
    return error;
  }
  napi_value undefined = nullptr;
  napi_get_undefined(env, &undefined);
  return undefined;
}

void SettlePromise(napi_env env, napi_deferred* deferred, bool resolve, napi_value value) noexcept {
  if (*deferred == nullptr) return;
  ClearPendingException(env);
  if (value == nullptr) napi_get_undefined(env, &value);
  if (resolve) {
    napi_resolve_deferred(env, *deferred, value);
  } else {
    napi_reject_deferred(env, *deferred, value);
  }
  *deferred = nullptr;
}

}  // namespace torchnode
