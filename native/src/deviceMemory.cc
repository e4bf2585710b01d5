#include "deviceMemory.h"

#include <cmath>

#include "cudaCheck.h"
#include "jsErrors.h"
#include "status.h"

namespace cskv {
namespace {

struct MemoryInfo {
  size_t freeBytes = 0;
  size_t totalBytes = 0;
};

Status QueryDeviceMemory(int device, MemoryInfo& memory) {
#ifdef CSKV_WITH_CUDA
  CSKV_CUDA_TRY(cudaSetDevice(device), "deviceMemory");
  CSKV_CUDA_TRY(cudaMemGetInfo(&memory.freeBytes, &memory.totalBytes), "deviceMemory");
  return Status::Ok();
#else
  (void)device;
  (void)memory;
  return Status::Error("BACKEND", "deviceMemory: this addon was built without CUDA");
#endif
}

}  // namespace

Napi::Value DeviceMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    ThrowStatus(env, Status::Error("BAD_ARGUMENT", "deviceMemory: expects a device index"));
  }
  const double index = info[0].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(index) || index < 0 || index > 1024 || std::floor(index) != index) {
    ThrowStatus(env, Status::Error("BAD_ARGUMENT", "deviceMemory: device index must be a non-negative integer"));
  }
  MemoryInfo memory;
  const Status status = QueryDeviceMemory(static_cast<int>(index), memory);
  if (!status.ok()) ThrowStatus(env, status);
  Napi::Object result = Napi::Object::New(env);
  result.Set("totalBytes", static_cast<double>(memory.totalBytes));
  result.Set("freeBytes", static_cast<double>(memory.freeBytes));
  return result;
}

}  // namespace cskv
