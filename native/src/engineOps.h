// addon.CudaEngine: the CUDA engine (engine/deviceEngine.h) as a JavaScript class, driven by
// src/runtime/backends/cudaEngine.ts. forward() runs on a worker thread and returns a Promise; one call at a
// time (a second while one runs is BAD_ARGUMENT). addon.cacheLayout and addon.attentionPlan expose the pure
// planning arithmetic for the CPU tests. Errors are typed (jsErrors.h).
#pragma once

#include <napi.h>

namespace cskv {

void ExportEngine(Napi::Env env, Napi::Object exports);

}  // namespace cskv
