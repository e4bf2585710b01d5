// addon.kernels: each kernel callable on typed arrays, for checking against a float64 reference (test/gpu/).
// Synchronous and copying: a verification path, not the engine's. Arguments are checked here (BAD_ARGUMENT);
// device failures come back as CUDA / OUT_OF_MEMORY errors naming the kernel, BACKEND in a CPU-only build.
#pragma once

#include <napi.h>

namespace cskv {

Napi::Object KernelOps(Napi::Env env);

}  // namespace cskv
