// addon.deviceMemory(device) → {totalBytes, freeBytes}: what cudaMemGetInfo sees, for the UI and for checking
// the cache's own accounting. Throws a typed error (code CUDA, or BACKEND in a CPU-only build).
#pragma once

#include <napi.h>

namespace cskv {

Napi::Value DeviceMemory(const Napi::CallbackInfo& info);

}  // namespace cskv
