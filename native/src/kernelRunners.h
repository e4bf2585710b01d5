// Runs one kernel on host arrays: upload, poison the outputs, launch, synchronise, download, each step checked.
// These back the addon's `kernels` exports, which exist to check every kernel against a float64 reference on the
// GPU machine (test/gpu/); the engine will call the launchers (kernels/*.cuh) on device buffers directly.
// Inputs and outputs are f32 on the host; with DType::kBf16 they are converted to bf16 on the device first
// and the outputs back to f32 (exactly) after, so the kernel really runs on bf16 storage.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/quantLayout.h"
#include "status.h"

namespace cskv {

Status RunRmsNorm(DType type, const float* x, const float* weight, float* out, size_t rows, size_t cols, float eps);
Status RunRope(DType type, const float* x, float* out, const int32_t* positions, const double* invFreq, float attentionFactor, size_t tokens,
               size_t heads, size_t headDim);
Status RunSwiglu(DType type, const float* gate, const float* up, float* out, size_t count);
Status RunF32ToBf16(const float* in, uint16_t* out, size_t count);
Status RunBf16ToF32(const uint16_t* in, float* out, size_t count);
Status RunF16ToBf16(const uint16_t* in, uint16_t* out, size_t count);
Status RunQuantise(QuantGrouping grouping, const float* rows, size_t tokens, size_t channels, int bits, uint8_t* codes, uint16_t* scaleZero);
Status RunDequantise(QuantGrouping grouping, const uint8_t* codes, const uint16_t* scaleZero, size_t tokens, size_t channels, int bits, float* out);

}  // namespace cskv
