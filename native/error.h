// The addon's one error type, in plain C++ (no N-API, no LibTorch), so that every layer can throw it and
// the N-API layer can turn it into the JavaScript error class it was given (with .code and .details).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace torchnode {

// An error to show the user: `code` is stable (tests and callers switch on it), `message` is one line,
// `details` is LibTorch's full text (without its C++ backtrace) where there is one.
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message, std::string details = "")
      : std::runtime_error(message), code_(std::move(code)), details_(std::move(details)) {}
  const std::string& code() const { return code_; }
  const std::string& details() const { return details_; }

 private:
  std::string code_;
  std::string details_;
};

[[noreturn]] inline void Fail(const std::string& code, const std::string& message, const std::string& details = "") {
  throw Error(code, message, details);
}

}  // namespace torchnode
