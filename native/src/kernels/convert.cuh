// Element type conversions on the device: f32 → bf16 (round to nearest even), bf16 → f32 (exact) and
// f16 → bf16 (checkpoints stored in f16 become bf16 on load).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"

namespace cskv {

Status LaunchF32ToBf16(const float* in, uint16_t* out, size_t count, cudaStream_t stream);
Status LaunchBf16ToF32(const uint16_t* in, float* out, size_t count, cudaStream_t stream);
Status LaunchF16ToBf16(const uint16_t* in, uint16_t* out, size_t count, cudaStream_t stream);
Status LaunchF16ToF32(const uint16_t* in, float* out, size_t count, cudaStream_t stream);

}  // namespace cskv
