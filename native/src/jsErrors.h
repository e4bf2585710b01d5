// Typed errors into JavaScript. The runtime hands its RuntimeError class over once (setErrorClass), so errors
// raised here are `instanceof RuntimeError` with a stable `.code`, like better-sqlite3's SqliteError; before
// that (or if it is never handed over) they are plain Errors carrying the same `.code`.
#pragma once

#include <napi.h>

#include "status.h"

namespace cskv {

// Builds the error object for `status` (which must not be ok).
Napi::Error TypedError(Napi::Env env, const Status& status);

// Throws `status` as a JavaScript exception (a C++ Napi::Error, turned into a JS throw by node-addon-api).
[[noreturn]] void ThrowStatus(Napi::Env env, const Status& status);

// addon.setErrorClass(RuntimeError): remembers the class whose constructor is (code, message).
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

}  // namespace cskv
