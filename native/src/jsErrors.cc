#include "jsErrors.h"

namespace cskv {
namespace {

// One per Node environment (main thread or worker_threads), so a class from one isolate is never used in another.
struct ErrorClass {
  Napi::FunctionReference constructor;
};

}  // namespace

Napi::Error TypedError(Napi::Env env, const Status& status) {
  const std::string code = status.code.empty() ? "BACKEND" : status.code;
  ErrorClass* registered = env.GetInstanceData<ErrorClass>();
  if (registered != nullptr && !registered->constructor.IsEmpty()) {
    Napi::Object error = registered->constructor.New({Napi::String::New(env, code), Napi::String::New(env, status.message)});
    return Napi::Error(env, error);
  }
  Napi::Error error = Napi::Error::New(env, status.message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

void ThrowStatus(Napi::Env env, const Status& status) {
  throw TypedError(env, status);
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsFunction()) {
    ThrowStatus(env, Status::Error("BAD_ARGUMENT", "setErrorClass expects a constructor (code, message)"));
  }
  auto* registered = new ErrorClass{Napi::Persistent(info[0].As<Napi::Function>())};
  env.SetInstanceData<ErrorClass>(registered);  // deletes any previous one
  return env.Undefined();
}

}  // namespace cskv
