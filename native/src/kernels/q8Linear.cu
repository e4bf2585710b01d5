#include "q8Linear.cuh"

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {
namespace {

constexpr int kWarp = 32;
constexpr int kGemvWarps = 8;           // output rows per thread block
constexpr int kCodesPerLane = 16;       // one 16-byte load
constexpr int kCodesPerStep = kWarp * kCodesPerLane;

__device__ __forceinline__ float Bf16ToFloat(uint16_t bits) { return __uint_as_float(static_cast<uint32_t>(bits) << 16); }

__device__ __forceinline__ uint16_t FloatToBf16(float value) {
  const uint32_t bits = __float_as_uint(value);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x7fffffu) != 0) return 0x7fc0;
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);  // round to nearest even
}

// 16 activations of row `x` from column `col`: two 16-byte loads when the row is aligned and whole there, else
// element by element with the columns past k read as 0 (their codes are the padding's 0 anyway).
__device__ __forceinline__ void LoadActivations(const uint16_t* x, size_t col, size_t k, bool vector, float (&out)[kCodesPerLane]) {
  if (vector && col + kCodesPerLane <= k) {
    const uint4* p = reinterpret_cast<const uint4*>(x + col);
    const uint4 parts[2] = {__ldg(p), __ldg(p + 1)};
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const uint32_t words[4] = {parts[h].x, parts[h].y, parts[h].z, parts[h].w};
#pragma unroll
      for (int i = 0; i < 4; i++) {
        out[h * 8 + 2 * i] = __uint_as_float(words[i] << 16);
        out[h * 8 + 2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
      }
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < kCodesPerLane; j++) out[j] = col + j < k ? Bf16ToFloat(x[col + j]) : 0.f;
}

// ---------------------------------------------------------------------------------------------------------------
// kernels

// One warp per output row; ROWS activation rows share every weight load.
template <int ROWS>
__global__ void __launch_bounds__(kGemvWarps * kWarp) Q8GemvKernel(const uint16_t* __restrict__ x, const int8_t* __restrict__ codes,
                                                                   const float* __restrict__ scales, size_t n, size_t k, float* __restrict__ out,
                                                                   float beta, bool vectorX) {
  const int lane = threadIdx.x % kWarp;
  const size_t row = static_cast<size_t>(blockIdx.x) * kGemvWarps + threadIdx.x / kWarp;
  if (row >= n) return;
  const size_t blocksPerRow = (k + kQ8Block - 1) / kQ8Block, stride = blocksPerRow * kQ8Block;
  const int8_t* rowCodes = codes + row * stride;
  const float* rowScales = scales + row * blocksPerRow;
  float acc[ROWS];
#pragma unroll
  for (int m = 0; m < ROWS; m++) acc[m] = 0.f;
  for (size_t col = static_cast<size_t>(lane) * kCodesPerLane; col < stride; col += kCodesPerStep) {
    // Weights are read once per forward: a streaming load that does not keep them in L1.
    const int4 packed = __ldcs(reinterpret_cast<const int4*>(rowCodes + col));
    const float scale = __ldg(rowScales + col / kQ8Block);
    const int8_t* bytes = reinterpret_cast<const int8_t*>(&packed);
    float w[kCodesPerLane];
#pragma unroll
    for (int j = 0; j < kCodesPerLane; j++) w[j] = static_cast<float>(bytes[j]);
#pragma unroll
    for (int m = 0; m < ROWS; m++) {
      float a[kCodesPerLane];
      LoadActivations(x + m * k, col, k, vectorX, a);
      float dot = 0.f;
#pragma unroll
      for (int j = 0; j < kCodesPerLane; j++) dot = fmaf(w[j], a[j], dot);
      acc[m] = fmaf(scale, dot, acc[m]);
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

__global__ void Q8DequantiseRowsKernel(const int8_t* __restrict__ codes, const float* __restrict__ scales, size_t k, size_t first, size_t count,
                                       uint16_t* __restrict__ out) {
  const size_t blocksPerRow = (k + kQ8Block - 1) / kQ8Block, stride = blocksPerRow * kQ8Block;
  const size_t total = count * k;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = first + i / k, c = i % k;
    out[i] = FloatToBf16(static_cast<float>(codes[r * stride + c]) * scales[r * blocksPerRow + c / kQ8Block]);
  }
}

__global__ void AddColumnsKernel(float* out, size_t outStride, const float* tile, size_t rows, size_t first, size_t count, float beta) {
  const size_t total = rows * count;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float* o = out + (i / count) * outStride + first + i % count;
    *o = beta == 0.f ? tile[i] : fmaf(beta, *o, tile[i]);
  }
}

template <int ROWS>
Status LaunchGemvRows(const uint16_t* x, const Q8Weight& w, float* out, float beta, cudaStream_t stream) {
  const bool vectorX = w.k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const unsigned blocks = static_cast<unsigned>((w.n + kGemvWarps - 1) / kGemvWarps);
  Q8GemvKernel<ROWS><<<blocks, kGemvWarps * kWarp, 0, stream>>>(x, w.codes, w.scales, w.n, w.k, out, beta, vectorX);
  CSKV_CUDA_TRY(cudaGetLastError(), "q8Gemv kernel launch");
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchQ8Gemv(const uint16_t* x, size_t rows, const Q8Weight& w, float* out, float beta, cudaStream_t stream) {
  if (w.n == 0 || w.k == 0) return Status::Error("BAD_ARGUMENT", "q8Gemv: empty weight");
  if (reinterpret_cast<uintptr_t>(w.codes) % 16 != 0) return Status::Error("BAD_ARGUMENT", "q8Gemv: codes must be 16-byte aligned");
  if (w.n > size_t{0x7fffffff} * kGemvWarps) return Status::Error("BAD_ARGUMENT", "q8Gemv: too many output rows");
  switch (rows) {
    case 1: return LaunchGemvRows<1>(x, w, out, beta, stream);
    case 2: return LaunchGemvRows<2>(x, w, out, beta, stream);
    case 3: return LaunchGemvRows<3>(x, w, out, beta, stream);
    case 4: return LaunchGemvRows<4>(x, w, out, beta, stream);
    case 5: return LaunchGemvRows<5>(x, w, out, beta, stream);
    case 6: return LaunchGemvRows<6>(x, w, out, beta, stream);
    case 7: return LaunchGemvRows<7>(x, w, out, beta, stream);
    case 8: return LaunchGemvRows<8>(x, w, out, beta, stream);
    default: return Status::Error("BAD_ARGUMENT", "q8Gemv: 1.." + std::to_string(kQ8GemvMaxRows) + " activation rows, got " + std::to_string(rows));
  }
}

Status LaunchQ8DequantiseRows(const Q8Weight& w, size_t first, size_t count, uint16_t* out, cudaStream_t stream) {
  if (first + count > w.n) return Status::Error("BAD_ARGUMENT", "q8DequantiseRows: rows past the weight's end");
  if (count * w.k == 0) return Status::Ok();
  constexpr int kThreads = 256;
  Q8DequantiseRowsKernel<<<GridFor(count * w.k, kThreads), kThreads, 0, stream>>>(w.codes, w.scales, w.k, first, count, out);
  CSKV_CUDA_TRY(cudaGetLastError(), "q8DequantiseRows kernel launch");
  return Status::Ok();
}

Status LaunchAddColumns(float* out, size_t outStride, const float* tile, size_t rows, size_t first, size_t count, float beta, cudaStream_t stream) {
  if (first + count > outStride) return Status::Error("BAD_ARGUMENT", "addColumns: columns past the row's end");
  if (rows * count == 0) return Status::Ok();
  constexpr int kThreads = 256;
  AddColumnsKernel<<<GridFor(rows * count, kThreads), kThreads, 0, stream>>>(out, outStride, tile, rows, first, count, beta);
  CSKV_CUDA_TRY(cudaGetLastError(), "addColumns kernel launch");
  return Status::Ok();
}

}  // namespace cskv
