#include "q4Linear.cuh"

#include <cuda_fp16.h>

#include <string>

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {
namespace {

constexpr int kWarp = 32;
constexpr int kGemvWarps = 8;  // output rows per thread block

__device__ __forceinline__ float HalfBits(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

__device__ __forceinline__ uint16_t FloatToBf16(float value) {
  const uint32_t bits = __float_as_uint(value);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x7fffffu) != 0) return 0x7fc0;
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);  // round to nearest even
}

// The 32 bf16 activations of row `x` from column `col` as 16 words (two channels a word, the even one low):
// four 16-byte loads when the row is aligned and whole there, else element by element with columns past k as 0.
__device__ __forceinline__ void LoadActivations(const uint16_t* x, size_t col, size_t k, bool vector, uint32_t (&out)[16]) {
  if (vector && col + kQ4Block <= k) {
    const uint4* p = reinterpret_cast<const uint4*>(x + col);
#pragma unroll
    for (int q = 0; q < 4; q++) {
      const uint4 part = __ldg(p + q);
      out[4 * q] = part.x, out[4 * q + 1] = part.y, out[4 * q + 2] = part.z, out[4 * q + 3] = part.w;
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < 16; i++) {
    const uint32_t lo = col + 2 * i < k ? x[col + 2 * i] : 0u, hi = col + 2 * i + 1 < k ? x[col + 2 * i + 1] : 0u;
    out[i] = lo | (hi << 16);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// kernels

// One warp per output row; ROWS activation rows share every weight load. Per block: scale · Σ code·x − min · Σ x.
template <int ROWS>
__global__ void __launch_bounds__(kGemvWarps * kWarp) Q4GemvKernel(const uint16_t* __restrict__ x, const uint8_t* __restrict__ codes,
                                                                   const uint32_t* __restrict__ scaleMin, size_t n, size_t k, float* __restrict__ out,
                                                                   float beta, bool vectorX) {
  const int lane = threadIdx.x % kWarp;
  const size_t row = static_cast<size_t>(blockIdx.x) * kGemvWarps + threadIdx.x / kWarp;
  if (row >= n) return;
  const size_t blocksPerRow = (k + kQ4Block - 1) / kQ4Block;
  const uint4* rowCodes = reinterpret_cast<const uint4*>(codes + row * blocksPerRow * kQ4BlockBytes);
  const uint32_t* rowScaleMin = scaleMin + row * blocksPerRow;
  float acc[ROWS];
#pragma unroll
  for (int m = 0; m < ROWS; m++) acc[m] = 0.f;
  for (size_t block = lane; block < blocksPerRow; block += kWarp) {
    // Weights are read once per forward: a streaming load that does not keep them in L1.
    const uint4 packed = __ldcs(rowCodes + block);
    const uint32_t pair = __ldg(rowScaleMin + block);
    const float scale = HalfBits(static_cast<uint16_t>(pair & 0xffffu)), min = HalfBits(static_cast<uint16_t>(pair >> 16));
    const uint32_t words[4] = {packed.x, packed.y, packed.z, packed.w};
    const size_t col = block * kQ4Block;
#pragma unroll
    for (int m = 0; m < ROWS; m++) {
      uint32_t a[16];
      LoadActivations(x + m * k, col, k, vectorX, a);
      float dot = 0.f, sum = 0.f;
#pragma unroll
      for (int i = 0; i < 16; i++) {
        // word i / 4 holds channels 8 * (i / 4) .. + 7; activations word i holds channels 2i, 2i + 1.
        const uint32_t w = words[i / 4] >> (8 * (i % 4));
        const float lo = __uint_as_float(a[i] << 16), hi = __uint_as_float(a[i] & 0xffff0000u);
        dot = fmaf(static_cast<float>(w & 15u), lo, dot);
        dot = fmaf(static_cast<float>((w >> 4) & 15u), hi, dot);
        sum += lo + hi;
      }
      acc[m] = fmaf(scale, dot, fmaf(-min, sum, acc[m]));
    }
  }
#pragma unroll
  for (int m = 0; m < ROWS; m++) {
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], offset);
  }
  if (lane == 0) {
#pragma unroll
    for (int m = 0; m < ROWS; m++) {
      float* o = out + m * n + row;
      *o = beta == 0.f ? acc[m] : fmaf(beta, *o, acc[m]);  // beta 0 never reads the output (it may hold NaN)
    }
  }
}

// One thread per pair of channels (one code byte); two bf16 out.
__global__ void Q4DequantiseRowsKernel(const uint8_t* __restrict__ codes, const uint16_t* __restrict__ scaleMin, size_t k, size_t first, size_t count,
                                       uint16_t* __restrict__ out) {
  const size_t blocksPerRow = (k + kQ4Block - 1) / kQ4Block, pairsPerRow = (k + 1) / 2;
  const size_t total = count * pairsPerRow;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = first + i / pairsPerRow, c = 2 * (i % pairsPerRow);
    const uint8_t byte = codes[r * blocksPerRow * kQ4BlockBytes + c / 2];
    const size_t block = r * blocksPerRow + c / kQ4Block;
    const float scale = HalfBits(scaleMin[2 * block]), min = HalfBits(scaleMin[2 * block + 1]);
    uint16_t* o = out + (r - first) * k + c;
    o[0] = FloatToBf16(fmaf(static_cast<float>(byte & 15), scale, -min));
    if (c + 1 < k) o[1] = FloatToBf16(fmaf(static_cast<float>(byte >> 4), scale, -min));
  }
}

template <int ROWS>
Status LaunchGemvRows(const uint16_t* x, const Q4Weight& w, float* out, float beta, cudaStream_t stream) {
  const bool vectorX = w.k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const unsigned blocks = static_cast<unsigned>((w.n + kGemvWarps - 1) / kGemvWarps);
  Q4GemvKernel<ROWS><<<blocks, kGemvWarps * kWarp, 0, stream>>>(x, w.codes, reinterpret_cast<const uint32_t*>(w.scaleMin), w.n, w.k, out, beta, vectorX);
  CSKV_CUDA_TRY(cudaGetLastError(), "q4Gemv kernel launch");
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchQ4Gemv(const uint16_t* x, size_t rows, const Q4Weight& w, float* out, float beta, cudaStream_t stream) {
  if (w.n == 0 || w.k == 0) return Status::Error("BAD_ARGUMENT", "q4Gemv: empty weight");
  if (reinterpret_cast<uintptr_t>(w.codes) % 16 != 0) return Status::Error("BAD_ARGUMENT", "q4Gemv: codes must be 16-byte aligned");
  if (reinterpret_cast<uintptr_t>(w.scaleMin) % 4 != 0) return Status::Error("BAD_ARGUMENT", "q4Gemv: (scale, min) pairs must be 4-byte aligned");
  if (w.n > size_t{0x7fffffff} * kGemvWarps) return Status::Error("BAD_ARGUMENT", "q4Gemv: too many output rows");
  switch (rows) {
    case 1: return LaunchGemvRows<1>(x, w, out, beta, stream);
    case 2: return LaunchGemvRows<2>(x, w, out, beta, stream);
    case 3: return LaunchGemvRows<3>(x, w, out, beta, stream);
    case 4: return LaunchGemvRows<4>(x, w, out, beta, stream);
    case 5: return LaunchGemvRows<5>(x, w, out, beta, stream);
    case 6: return LaunchGemvRows<6>(x, w, out, beta, stream);
    case 7: return LaunchGemvRows<7>(x, w, out, beta, stream);
    case 8: return LaunchGemvRows<8>(x, w, out, beta, stream);
    default: return Status::Error("BAD_ARGUMENT", "q4Gemv: 1.." + std::to_string(kQ4GemvMaxRows) + " activation rows, got " + std::to_string(rows));
  }
}

Status LaunchQ4DequantiseRows(const Q4Weight& w, size_t first, size_t count, uint16_t* out, cudaStream_t stream) {
  if (first + count > w.n) return Status::Error("BAD_ARGUMENT", "q4DequantiseRows: rows past the weight's end");
  if (count * w.k == 0) return Status::Ok();
  constexpr int kThreads = 256;
  Q4DequantiseRowsKernel<<<GridFor(count * ((w.k + 1) / 2), kThreads), kThreads, 0, stream>>>(w.codes, w.scaleMin, w.k, first, count, out);
  CSKV_CUDA_TRY(cudaGetLastError(), "q4DequantiseRows kernel launch");
  return Status::Ok();
}

}  // namespace cskv
