// Fills a device buffer of floats with one value: NaN poisoning of outputs before a kernel test, zeroing.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "../status.h"

namespace cskv {

Status LaunchFillFloat(float* data, size_t count, float value, cudaStream_t stream);

}  // namespace cskv
