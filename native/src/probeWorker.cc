#include "probeWorker.h"

#include "buildInfo.h"
#include "jsErrors.h"
#include "probe.h"

namespace cskv {
namespace {

Napi::Array Strings(Napi::Env env, const std::vector<std::string>& items) {
  Napi::Array array = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); i++) array.Set(static_cast<uint32_t>(i), items[i]);
  return array;
}

Napi::Object LibraryToJs(Napi::Env env, const ProbedLibrary& library) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("loaded", library.loaded);
  object.Set("path", library.path);
  if (!library.error.empty()) object.Set("error", library.error);
  object.Set("missingSymbols", Strings(env, library.missingSymbols));
  if (!library.version.empty()) object.Set("version", library.version);
  return object;
}

Napi::Object ResultToJs(Napi::Env env, const ProbeResult& result) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("available", result.available);
  if (!result.available) object.Set("reason", result.reason);
  if (result.driverCudaVersion > 0) object.Set("driverCudaVersion", CudaVersionText(result.driverCudaVersion));
  if (result.runtimeCudaVersion > 0) object.Set("runtimeCudaVersion", CudaVersionText(result.runtimeCudaVersion));
  Napi::Array devices = Napi::Array::New(env, result.devices.size());
  for (size_t i = 0; i < result.devices.size(); i++) {
    const ProbedDevice& d = result.devices[i];
    Napi::Object device = Napi::Object::New(env);
    device.Set("index", d.index);
    device.Set("name", d.name);
    // Doubles hold byte counts exactly up to 2^53.
    device.Set("totalBytes", static_cast<double>(d.totalBytes));
    device.Set("freeBytes", static_cast<double>(d.freeBytes));
    device.Set("computeCapability", std::to_string(d.computeMajor) + "." + std::to_string(d.computeMinor));
    device.Set("multiprocessors", d.multiprocessors);
    device.Set("supported", d.supported);
    if (!d.problem.empty()) device.Set("problem", d.problem);
    devices.Set(static_cast<uint32_t>(i), device);
  }
  object.Set("devices", devices);
  Napi::Object libraries = Napi::Object::New(env);
  libraries.Set("cudaDriver", LibraryToJs(env, result.driver));
  libraries.Set("cublasLt", LibraryToJs(env, result.cublasLt));
  object.Set("libraries", libraries);
  return object;
}

class ProbeWorker : public Napi::AsyncWorker {
 public:
  ProbeWorker(Napi::Env env, ProbeOptions options)
      : Napi::AsyncWorker(env, "cskv.probe"), deferred_(Napi::Promise::Deferred::New(env)), options_(std::move(options)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { result_ = RunProbe(options_); }
  void OnOK() override { deferred_.Resolve(ResultToJs(Env(), result_)); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  ProbeOptions options_;
  ProbeResult result_;
};

std::string OptionalPath(Napi::Env env, const Napi::Object& options, const char* name) {
  if (!options.Has(name)) return "";
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return "";
  if (!value.IsString()) ThrowStatus(env, Status::Error("BAD_ARGUMENT", std::string("probe: options.") + name + " must be a path"));
  return value.As<Napi::String>().Utf8Value();
}

}  // namespace

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ProbeOptions options;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsObject()) ThrowStatus(env, Status::Error("BAD_ARGUMENT", "probe: options must be an object"));
    Napi::Object object = info[0].As<Napi::Object>();
    options.libcuda = OptionalPath(env, object, "libcuda");
    options.cublasLt = OptionalPath(env, object, "cublasLt");
  }
  auto* worker = new ProbeWorker(env, std::move(options));  // deletes itself after OnOK/OnError
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace cskv
