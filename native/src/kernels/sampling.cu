#include "sampling.cuh"

#include <cmath>

#include "../cudaCheck.h"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

constexpr int kThreads = 1024;

// Float bits mapped so that unsigned order is float order (NaN aside).
__device__ __forceinline__ uint32_t OrderedKey(float x) {
  const uint32_t bits = __float_as_uint(x);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

template <typename T, typename Op>
__device__ T BlockReduce(T value, Op op, T* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  T total = scratch[0];
  for (int w = 1; w < kThreads / 32; w++) total = op(total, scratch[w]);
  __syncthreads();
  return total;
}

__global__ void __launch_bounds__(kThreads) SampleKernel(const float* logits, int vocab, SampleParams params, int32_t* token) {
  __shared__ double doubles[kThreads / 32];
  __shared__ float floats[kThreads / 32];
  __shared__ unsigned counts[kThreads / 32];
  __shared__ double segmentMass[kThreads];
  const int tid = threadIdx.x;
  const auto maxOp = [](float a, float b) { return fmaxf(a, b); };
  const auto addD = [](double a, double b) { return a + b; };
  const auto addU = [](unsigned a, unsigned b) { return a + b; };

  float localMax = -INFINITY;
  for (int i = tid; i < vocab; i += kThreads) localMax = fmaxf(localMax, logits[i]);
  const float maxLogit = BlockReduce(localMax, maxOp, floats);

  if (params.greedy) {
    int first = vocab;
    for (int i = tid; i < vocab; i += kThreads) {
      if (logits[i] == maxLogit && i < first) first = i;
    }
    const int best = BlockReduce(first, [](int a, int b) { return a < b ? a : b; }, reinterpret_cast<int*>(counts));
    if (tid == 0) *token = best < vocab ? best : 0;
    return;
  }

  // Top-k: the largest key with at least k logits at or above it.
  uint32_t kThreshold = 0;
  if (params.topK > 0 && params.topK < vocab) {
    for (int bit = 31; bit >= 0; bit--) {
      const uint32_t candidate = kThreshold | (1u << bit);
      unsigned count = 0;
      for (int i = tid; i < vocab; i += kThreads) count += OrderedKey(logits[i]) >= candidate ? 1u : 0u;
      if (BlockReduce(count, addU, counts) >= static_cast<unsigned>(params.topK)) kThreshold = candidate;
    }
  }
  const double invT = 1.0 / params.temperature;
  const auto weight = [&](int i) { return exp((static_cast<double>(logits[i]) - maxLogit) * invT); };
  const auto massAtOrAbove = [&](uint32_t threshold) {
    double mass = 0.0;
    for (int i = tid; i < vocab; i += kThreads) {
      if (OrderedKey(logits[i]) >= threshold) mass += weight(i);
    }
    return BlockReduce(mass, addD, doubles);
  };
  const double total = massAtOrAbove(kThreshold);
  // Top-p: the largest threshold whose kept mass still reaches p of the total.
  uint32_t threshold = kThreshold;
  if (params.topP < 1.f) {
    uint32_t search = 0;
    for (int bit = 31; bit >= 0; bit--) {
      const uint32_t candidate = search | (1u << bit);
      const uint32_t effective = candidate > kThreshold ? candidate : kThreshold;
      if (massAtOrAbove(effective) >= static_cast<double>(params.topP) * total) search = candidate;
    }
    threshold = search > kThreshold ? search : kThreshold;
  }
  // Each thread owns a contiguous run of indices; a scan over the runs finds the one holding u * kept.
  const int run = (vocab + kThreads - 1) / kThreads;
  const int first = tid * run, last = min(vocab, first + run);
  double mine = 0.0;
  for (int i = first; i < last; i++) {
    if (OrderedKey(logits[i]) >= threshold) mine += weight(i);
  }
  segmentMass[tid] = mine;
  __syncthreads();
  if (tid == 0) {
    double kept = 0.0;
    for (int t = 0; t < kThreads; t++) kept += segmentMass[t];
    double target = params.u * kept;
    int chosen = -1, lastKept = -1;
    for (int t = 0; t < kThreads && chosen < 0; t++) {
      if (target >= segmentMass[t]) {
        target -= segmentMass[t];
        continue;
      }
      for (int i = t * run; i < min(vocab, (t + 1) * run); i++) {
        if (OrderedKey(logits[i]) < threshold) continue;
        lastKept = i;
        target -= weight(i);
        if (target < 0) {
          chosen = i;
          break;
        }
      }
    }
    if (chosen < 0) {
      // Rounding left u * kept past the end: the last kept index.
      for (int i = vocab - 1; i >= 0 && lastKept < 0; i--) {
        if (OrderedKey(logits[i]) >= threshold) lastKept = i;
      }
      chosen = lastKept < 0 ? 0 : lastKept;
    }
    *token = chosen;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchSample(const float* logits, int vocab, const SampleParams& params, int32_t* token, cudaStream_t stream) {
  if (vocab < 1) return Status::Error("BAD_ARGUMENT", "sample: empty vocabulary");
  if (!params.greedy && !(params.temperature > 0.f && std::isfinite(params.temperature))) return Status::Error("BAD_ARGUMENT", "sample: temperature must be positive");
  if (params.topK < 0) return Status::Error("BAD_ARGUMENT", "sample: topK must be >= 0");
  if (!(params.topP > 0.f && params.topP <= 1.f)) return Status::Error("BAD_ARGUMENT", "sample: topP must be in (0, 1]");
  if (!(params.u >= 0.0 && params.u < 1.0)) return Status::Error("BAD_ARGUMENT", "sample: u must be in [0, 1)");
  SampleKernel<<<1, kThreads, 0, stream>>>(logits, vocab, params, token);
  CSKV_CUDA_TRY(cudaGetLastError(), "sample kernel launch");
  return Status::Ok();
}

}  // namespace cskv
