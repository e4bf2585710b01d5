// A failure as data. Native code never exits the process, never prints to stdout (it may be the sidecar's
// JSON-RPC stream) and never lets a C++ exception cross a thread: every fallible step returns a Status, and the
// N-API layer turns it into a typed JavaScript error (jsErrors.h).
#pragma once

#include <string>
#include <utility>

namespace cskv {

struct Status {
  // A RuntimeErrorCode of src/runtime/errors.ts ('CUDA', 'OUT_OF_MEMORY', 'BAD_ARGUMENT', 'BACKEND', ...);
  // empty when the step succeeded.
  std::string code;
  std::string message;

  bool ok() const { return code.empty(); }
  static Status Ok() { return Status{}; }
  static Status Error(std::string code, std::string message) { return Status{std::move(code), std::move(message)}; }
};

}  // namespace cskv

// Returns from the enclosing function (which returns Status) when `expression` is not ok.
#define CSKV_TRY(expression)                         \
  do {                                               \
    const ::cskv::Status cskv_try_ = (expression);   \
    if (!cskv_try_.ok()) return cskv_try_;           \
  } while (0)
