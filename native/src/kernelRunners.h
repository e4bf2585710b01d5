// Runs one kernel on host arrays: upload, poison the outputs, launch, synchronise, download, each step checked.
// These back the addon's `kernels` exports, which exist to check every kernel against a float64 reference on the
// GPU machine (test/gpu/); the engine will call the launchers (kernels/*.cuh) on device buffers directly.
// Inputs and outputs are f32 on the host; with DType::kBf16 they are converted to bf16 on the device first
// and the outputs back to f32 (exactly) after, so the kernel really runs on bf16 storage.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
#include "kernels/q4Layout.h"
#include "kernels/q8Layout.h"
#include "kernels/quantLayout.h"
#include "reference/fusedAttentionReference.h"
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
// Attention over both cache branches (kernels/attention.cuh) on host arrays; keys/values are rounded to bf16 on
// the device as the cache stores them, the output is the kernel's bf16 widened to f32.
struct AttentionRun {
  const float* q = nullptr;  // [queries, heads * headDim]
  const float* kRing = nullptr;  // [ringRows, kvDim]
  const float* vRing = nullptr;
  int ringRows = 1;
  const float* kRebuilt = nullptr;  // [compressedTokens, kvDim] (before the mean)
  const float* vRebuilt = nullptr;
  const float* kMean = nullptr;  // [kvDim]
  const float* vMean = nullptr;
  int64_t compressedTokens = 0;
  const double* invFreq = nullptr;  // [headDim / 2]
  double attentionFactor = 1.0;
  int64_t start = 0;
  int queries = 0, heads = 0, kvHeads = 0, headDim = 0, slidingWindow = 0;
  int multiprocessors = 1;  // drives the split plan, so a test can force many splits
};
Status RunAttention(const AttentionRun& run, float* out);
// The fused decode attention (kernels/fusedAttention.cuh) and its merge on host arrays, split as the engine splits
// it on a GPU with `multiprocessors`; rings rounded to bf16 on the device, the output the kernel's bf16 widened.
Status RunFusedAttention(const FusedAttentionInputs& in, int multiprocessors, float* out);
// The fused prefill attention (kernels/fusedPrefillAttention.cuh) on host arrays, one launch, no merge; rings
// rounded to bf16 on the device, the output the kernel's bf16 widened.
Status RunFusedPrefillAttention(const FusedAttentionInputs& in, float* out);

// The device sampler (kernels/sampling.cuh) on a host row of logits.
Status RunSample(const float* logits, int vocab, bool greedy, float temperature, int topK, float topP, double u, int32_t* token);

// The q8 decode GEMV (kernels/q8Linear.cuh) on host arrays: x is rounded to bf16 on the device; with
// `accumulate` the output starts from it (beta = 1), else it is poisoned and written (beta = 0).
Status RunQ8Gemv(const float* x, size_t rows, const int8_t* codes, const float* scales, size_t n, size_t k, const float* accumulate, float* out);
// The q8 embedding lookup (kernels/embedding.cuh) of `count` tokens from a q8 table [n, k], f32 out.
Status RunQ8Embedding(const int8_t* codes, const float* scales, size_t n, size_t k, const int32_t* tokens, size_t count, float* out);
// The prefill path's dequantisation of weight rows [first, first + count) to bf16, widened to f32 for the host.
Status RunQ8DequantiseRows(const int8_t* codes, const float* scales, size_t n, size_t k, size_t first, size_t count, float* out);
// The same two for q4 weights (kernels/q4Linear.cuh): codes [n, ceil(k/32)*16], f16 (scale, min) pairs.
Status RunQ4Gemv(const float* x, size_t rows, const uint8_t* codes, const uint16_t* scaleMin, size_t n, size_t k, const float* accumulate, float* out);
Status RunQ4DequantiseRows(const uint8_t* codes, const uint16_t* scaleMin, size_t n, size_t k, size_t first, size_t count, float* out);

Status RunDequantise(QuantGrouping grouping, const uint8_t* codes, const uint16_t* scaleZero, size_t tokens, size_t channels, int bits, float* out);

}  // namespace cskv
