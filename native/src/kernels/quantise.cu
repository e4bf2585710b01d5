#include "quantise.cuh"

#include <cuda_fp16.h>

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

// Which (scale, zero) pair element i = t * channels + c uses.
__device__ __forceinline__ size_t PairOf(QuantGrouping grouping, size_t i, size_t channels) {
  const size_t t = i / channels, c = i % channels;
  const size_t groups = (channels + kValueGroup - 1) / kValueGroup;
  return grouping == QuantGrouping::kKeysPerChannel ? c : t * groups + c / kValueGroup;
}

// One thread per (scale, zero) pair: min/max of its run, then scale = fp16((max - min) / levels), zero = fp16(min).
// The arithmetic is done in double and rounded once to fp16, as the JS reference does.
__global__ void ScaleZeroKernel(QuantGrouping grouping, const float* rows, size_t tokens, size_t channels, int bits, uint16_t* scaleZero) {
  const size_t pairs = grouping == QuantGrouping::kKeysPerChannel ? channels : tokens * ((channels + kValueGroup - 1) / kValueGroup);
  const size_t groups = (channels + kValueGroup - 1) / kValueGroup;
  for (size_t p = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; p < pairs; p += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float lo = INFINITY, hi = -INFINITY;
    if (grouping == QuantGrouping::kKeysPerChannel) {
      for (size_t t = 0; t < tokens; t++) {
        const float v = rows[t * channels + p];
        lo = v < lo ? v : lo;  // not fminf: the reference keeps the first of -0 and +0, and fp16(zero) keeps its sign
        hi = v > hi ? v : hi;
      }
    } else {
      const size_t t = p / groups, first = (p % groups) * kValueGroup;
      const size_t last = first + kValueGroup < channels ? first + kValueGroup : channels;
      for (size_t c = first; c < last; c++) {
        const float v = rows[t * channels + c];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
    }
    const double levels = static_cast<double>((1 << bits) - 1);
    scaleZero[2 * p] = __half_as_ushort(__double2half((static_cast<double>(hi) - static_cast<double>(lo)) / levels));
    scaleZero[2 * p + 1] = __half_as_ushort(__double2half(static_cast<double>(lo)));
  }
}

// One thread per packed byte, so no two threads write the same byte. Tail bits beyond the last code stay 0.
__global__ void PackCodesKernel(QuantGrouping grouping, const float* rows, size_t tokens, size_t channels, int bits, const uint16_t* scaleZero,
                                uint8_t* codes) {
  const size_t count = tokens * channels;
  const int perByte = 8 / bits;
  const size_t bytes = (count * bits + 7) / 8;
  const int levels = (1 << bits) - 1;
  for (size_t b = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; b < bytes; b += static_cast<size_t>(gridDim.x) * blockDim.x) {
    unsigned packed = 0;
    for (int k = 0; k < perByte; k++) {
      const size_t i = b * perByte + k;
      if (i >= count) break;
      const size_t pair = PairOf(grouping, i, channels);
      const double scale = __half2float(__ushort_as_half(scaleZero[2 * pair]));
      const double zero = __half2float(__ushort_as_half(scaleZero[2 * pair + 1]));
      int q = 0;
      if (scale > 0) {
        const double code = floor((static_cast<double>(rows[i]) - zero) / scale + 0.5);
        q = code < 0 ? 0 : code > levels ? levels : static_cast<int>(code);
      }
      packed |= static_cast<unsigned>(q) << (k * bits);
    }
    codes[b] = static_cast<uint8_t>(packed);
  }
}

__global__ void DequantiseKernel(QuantGrouping grouping, const uint8_t* codes, const uint16_t* scaleZero, size_t tokens, size_t channels, int bits,
                                 float* out) {
  const size_t count = tokens * channels;
  const int perByte = 8 / bits;
  const unsigned mask = (1u << bits) - 1;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const unsigned code = (codes[i / perByte] >> ((i % perByte) * bits)) & mask;
    const size_t pair = PairOf(grouping, i, channels);
    // code * scale is exact in f32 (at most 8 + 11 significant bits), so this rounds once, like the f64 reference.
    out[i] = fmaf(static_cast<float>(code), __half2float(__ushort_as_half(scaleZero[2 * pair])), __half2float(__ushort_as_half(scaleZero[2 * pair + 1])));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

constexpr int kThreads = 256;

Status CheckQuantShape(const char* operation, size_t channels, int bits) {
  if (bits != 8 && bits != 4 && bits != 2) return Status::Error("BAD_ARGUMENT", std::string(operation) + ": bits must be 8, 4 or 2");
  if (channels == 0) return Status::Error("BAD_ARGUMENT", std::string(operation) + ": zero channels");
  return Status::Ok();
}

Status LaunchQuantise(QuantGrouping grouping, const float* rows, size_t tokens, size_t channels, int bits, uint8_t* codes, uint16_t* scaleZero,
                      cudaStream_t stream) {
  const Status shape = CheckQuantShape("quantise", channels, bits);
  if (!shape.ok()) return shape;
  if (tokens == 0) return Status::Ok();
  const size_t pairs = ScaleZeroPairs(grouping, tokens, channels);
  ScaleZeroKernel<<<GridFor(pairs, kThreads), kThreads, 0, stream>>>(grouping, rows, tokens, channels, bits, scaleZero);
  CSKV_CUDA_TRY(cudaGetLastError(), "quantise scale/zero kernel launch");
  PackCodesKernel<<<GridFor(PackedBytes(tokens * channels, bits), kThreads), kThreads, 0, stream>>>(grouping, rows, tokens, channels, bits, scaleZero, codes);
  CSKV_CUDA_TRY(cudaGetLastError(), "quantise pack kernel launch");
  return Status::Ok();
}

Status LaunchDequantise(QuantGrouping grouping, const uint8_t* codes, const uint16_t* scaleZero, size_t tokens, size_t channels, int bits, float* out,
                        cudaStream_t stream) {
  const Status shape = CheckQuantShape("dequantise", channels, bits);
  if (!shape.ok()) return shape;
  if (tokens == 0) return Status::Ok();
  DequantiseKernel<<<GridFor(tokens * channels, kThreads), kThreads, 0, stream>>>(grouping, codes, scaleZero, tokens, channels, bits, out);
  CSKV_CUDA_TRY(cudaGetLastError(), "dequantise kernel launch");
  return Status::Ok();
}

}  // namespace cskv
