// The CPU-only build's kernel runners: every one reports that this addon has no CUDA.
#include "kernelRunners.h"

#include <string>

namespace cskv {
namespace {

Status NoCuda(const char* operation) {
  return Status::Error("BACKEND", std::string(operation) + ": this addon was built without CUDA");
}

}  // namespace

Status RunRmsNorm(DType, const float*, const float*, float*, size_t, size_t, float) { return NoCuda("rmsNorm"); }
Status RunRope(DType, const float*, float*, const int32_t*, const double*, float, size_t, size_t, size_t) { return NoCuda("rope"); }
Status RunSwiglu(DType, const float*, const float*, float*, size_t) { return NoCuda("swiglu"); }
Status RunF32ToBf16(const float*, uint16_t*, size_t) { return NoCuda("f32ToBf16"); }
Status RunBf16ToF32(const uint16_t*, float*, size_t) { return NoCuda("bf16ToF32"); }
Status RunF16ToBf16(const uint16_t*, uint16_t*, size_t) { return NoCuda("f16ToBf16"); }
Status RunQuantise(QuantGrouping grouping, const float*, size_t, size_t, int, uint8_t*, uint16_t*) {
  return NoCuda(grouping == QuantGrouping::kKeysPerChannel ? "quantiseKeys" : "quantiseValues");
}
Status RunDequantise(QuantGrouping grouping, const uint8_t*, const uint16_t*, size_t, size_t, int, float*) {
  return NoCuda(grouping == QuantGrouping::kKeysPerChannel ? "dequantiseKeys" : "dequantiseValues");
}

Status RunQ8Gemv(const float*, size_t, const int8_t*, const float*, size_t, size_t, const float*, float*) { return NoCuda("q8Gemv"); }
Status RunQ8DequantiseRows(const int8_t*, const float*, size_t, size_t, size_t, size_t, float*) { return NoCuda("q8DequantiseRows"); }
Status RunQ8Embedding(const int8_t*, const float*, size_t, size_t, const int32_t*, size_t, float*) { return NoCuda("q8Embedding"); }
Status RunQ4Gemv(const float*, size_t, const uint8_t*, const uint16_t*, size_t, size_t, const float*, float*) { return NoCuda("q4Gemv"); }
Status RunQ4DequantiseRows(const uint8_t*, const uint16_t*, size_t, size_t, size_t, size_t, float*) { return NoCuda("q4DequantiseRows"); }
Status RunAttention(const AttentionRun&, float*) { return NoCuda("attention"); }
Status RunFusedAttention(const FusedAttentionInputs&, int, float*) { return NoCuda("fusedAttention"); }
Status RunFusedPrefillAttention(const FusedAttentionInputs&, float*) { return NoCuda("fusedPrefillAttention"); }
Status RunSample(const float*, int, bool, float, int, float, double, int32_t*) { return NoCuda("sample"); }

}  // namespace cskv
