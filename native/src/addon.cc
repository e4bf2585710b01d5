// The addon's entry: init and exports only. Each operation lives in its own file.
#include <napi.h>

#include "buildInfo.h"
#include "deviceMemory.h"
#include "engineOps.h"
#include "jsErrors.h"
#include "kernelOps.h"
#include "probeWorker.h"

namespace cskv {
namespace {

// Bumped whenever an export changes shape, so the runtime refuses a stale or foreign .node (cskv.nativeLibrary).
constexpr int kAddonAbi = 6;

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abi", kAddonAbi);
  Napi::Object build = Napi::Object::New(env);
  build.Set("cuda", kBuiltWithCuda);
  if (kBuiltWithCuda) {
    build.Set("cudaVersion", std::to_string(kCudaBuildVersion / 1000) + "." + std::to_string((kCudaBuildVersion % 1000) / 10));
    build.Set("architectures", kCudaArchitectures);
  }
  exports.Set("build", build);
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("deviceMemory", Napi::Function::New(env, DeviceMemory, "deviceMemory"));
  exports.Set("kernels", KernelOps(env));
  ExportEngine(env, exports);
  return exports;
}

}  // namespace
}  // namespace cskv

// The macro pastes its argument into an identifier, so it needs an unqualified name.
static Napi::Object InitCskvNative(Napi::Env env, Napi::Object exports) { return cskv::Init(env, exports); }

NODE_API_MODULE(cskv_native, InitCskvNative)
