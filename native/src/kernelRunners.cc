#include "kernelRunners.h"

#include <cmath>

#include "deviceBuffer.h"
#include "engine/cacheLayout.h"
#include "kernels/attention.cuh"
#include "kernels/convert.cuh"
#include "kernels/embedding.cuh"
#include "kernels/fusedAttention.cuh"
#include "kernels/fusedPrefillAttention.cuh"
#include "kernels/q4Linear.cuh"
#include "kernels/q8Linear.cuh"
#include "kernels/quantise.cuh"
#include "kernels/rmsNorm.cuh"
#include "kernels/rope.cuh"
#include "kernels/ropeTable.cuh"
#include "kernels/sampling.cuh"
#include "kernels/swiglu.cuh"

namespace cskv {
namespace {

// All launches go to the legacy default stream, so cudaMemcpy orders them; the synchronise after each kernel
// surfaces its asynchronous faults (illegal address, ...) under the kernel's own name.
constexpr cudaStream_t kStream = nullptr;

Status Synchronise(const char* operation) {
  CSKV_CUDA_TRY(cudaDeviceSynchronize(), operation);
  return Status::Ok();
}

// An f32 host array on the device in `type`: uploaded as f32, converted there when bf16.
class TypedInput {
 public:
  Status Load(DType type, const float* host, size_t count, const char* operation) {
    CSKV_TRY(f32_.Allocate(count * sizeof(float), operation));
    CSKV_TRY(f32_.Upload(host, operation));
    if (type == DType::kF32) return Status::Ok();
    CSKV_TRY(bf16_.Allocate(count * sizeof(uint16_t), operation));
    CSKV_TRY(bf16_.Poison(operation));
    CSKV_TRY(LaunchF32ToBf16(f32_.as<float>(), bf16_.as<uint16_t>(), count, kStream));
    bf16Used_ = true;
    return Status::Ok();
  }
  const void* data() const { return bf16Used_ ? static_cast<const void*>(bf16_.as<uint16_t>()) : static_cast<const void*>(f32_.as<float>()); }

 private:
  DeviceBuffer f32_;
  DeviceBuffer bf16_;
  bool bf16Used_ = false;
};

// A poisoned device output in `type`, read back to an f32 host array (bf16 widened exactly on the device).
class TypedOutput {
 public:
  Status Allocate(DType type, size_t count, const char* operation) {
    type_ = type;
    count_ = count;
    CSKV_TRY(out_.Allocate(count * DTypeBytes(type), operation));
    return out_.Poison(operation);
  }
  void* data() const { return out_.as<void>(); }
  Status Read(float* host, const char* operation) {
    if (type_ == DType::kF32) return out_.Download(host, operation);
    DeviceBuffer widened;
    CSKV_TRY(widened.Allocate(count_ * sizeof(float), operation));
    CSKV_TRY(widened.Poison(operation));
    CSKV_TRY(LaunchBf16ToF32(out_.as<uint16_t>(), widened.as<float>(), count_, kStream));
    CSKV_TRY(Synchronise(operation));
    return widened.Download(host, operation);
  }

 private:
  DeviceBuffer out_;
  DType type_ = DType::kF32;
  size_t count_ = 0;
};

template <typename T>
Status UploadRaw(DeviceBuffer& buffer, const T* host, size_t count, const char* operation) {
  CSKV_TRY(buffer.Allocate(count * sizeof(T), operation));
  return buffer.Upload(host, operation);
}

template <typename T>
Status AllocatePoisoned(DeviceBuffer& buffer, size_t count, const char* operation) {
  CSKV_TRY(buffer.Allocate(count * sizeof(T), operation));
  return buffer.Poison(operation);
}

// The element conversions differ only in their types and kernel: upload, poison the output, launch, read back.
template <typename In, typename Out, typename Launch>
Status RunConversion(const char* operation, const In* in, Out* out, size_t count, Launch launch) {
  DeviceBuffer din, dout;
  CSKV_TRY(UploadRaw(din, in, count, operation));
  CSKV_TRY(AllocatePoisoned<Out>(dout, count, operation));
  CSKV_TRY(launch(din.as<In>(), dout.as<Out>(), count, kStream));
  CSKV_TRY(Synchronise(operation));
  return dout.Download(out, operation);
}

}  // namespace

Status RunRmsNorm(DType type, const float* x, const float* weight, float* out, size_t rows, size_t cols, float eps) {
  const char* op = "rmsNorm";
  TypedInput dx, dw;
  TypedOutput dout;
  CSKV_TRY(dx.Load(type, x, rows * cols, op));
  CSKV_TRY(dw.Load(type, weight, cols, op));
  CSKV_TRY(dout.Allocate(type, rows * cols, op));
  CSKV_TRY(LaunchRmsNorm(type, dx.data(), dw.data(), dout.data(), rows, cols, eps, kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Read(out, op);
}

Status RunRope(DType type, const float* x, float* out, const int32_t* positions, const double* invFreq, float attentionFactor, size_t tokens,
               size_t heads, size_t headDim) {
  const char* op = "rope";
  TypedInput dx;
  TypedOutput dout;
  DeviceBuffer dpositions, dfreq;
  CSKV_TRY(dx.Load(type, x, tokens * heads * headDim, op));
  CSKV_TRY(UploadRaw(dpositions, positions, tokens, op));
  CSKV_TRY(UploadRaw(dfreq, invFreq, headDim / 2, op));
  CSKV_TRY(dout.Allocate(type, tokens * heads * headDim, op));
  CSKV_TRY(LaunchRope(type, dx.data(), dout.data(), dpositions.as<int32_t>(), dfreq.as<double>(), attentionFactor, tokens, heads, headDim, kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Read(out, op);
}

Status RunSwiglu(DType type, const float* gate, const float* up, float* out, size_t count) {
  const char* op = "swiglu";
  TypedInput dgate, dup;
  TypedOutput dout;
  CSKV_TRY(dgate.Load(type, gate, count, op));
  CSKV_TRY(dup.Load(type, up, count, op));
  CSKV_TRY(dout.Allocate(type, count, op));
  CSKV_TRY(LaunchSwiglu(type, dgate.data(), dup.data(), dout.data(), count, kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Read(out, op);
}

Status RunF32ToBf16(const float* in, uint16_t* out, size_t count) {
  return RunConversion("f32ToBf16", in, out, count, LaunchF32ToBf16);
}

Status RunBf16ToF32(const uint16_t* in, float* out, size_t count) {
  return RunConversion("bf16ToF32", in, out, count, LaunchBf16ToF32);
}

Status RunF16ToBf16(const uint16_t* in, uint16_t* out, size_t count) {
  return RunConversion("f16ToBf16", in, out, count, LaunchF16ToBf16);
}

Status RunQuantise(QuantGrouping grouping, const float* rows, size_t tokens, size_t channels, int bits, uint8_t* codes, uint16_t* scaleZero) {
  const char* op = grouping == QuantGrouping::kKeysPerChannel ? "quantiseKeys" : "quantiseValues";
  DeviceBuffer drows, dcodes, dscaleZero;
  CSKV_TRY(UploadRaw(drows, rows, tokens * channels, op));
  CSKV_TRY(AllocatePoisoned<uint8_t>(dcodes, PackedBytes(tokens * channels, bits), op));
  CSKV_TRY(AllocatePoisoned<uint16_t>(dscaleZero, 2 * ScaleZeroPairs(grouping, tokens, channels), op));
  CSKV_TRY(LaunchQuantise(grouping, drows.as<float>(), tokens, channels, bits, dcodes.as<uint8_t>(), dscaleZero.as<uint16_t>(), kStream));
  CSKV_TRY(Synchronise(op));
  CSKV_TRY(dcodes.Download(codes, op));
  return dscaleZero.Download(scaleZero, op);
}

Status RunDequantise(QuantGrouping grouping, const uint8_t* codes, const uint16_t* scaleZero, size_t tokens, size_t channels, int bits, float* out) {
  const char* op = grouping == QuantGrouping::kKeysPerChannel ? "dequantiseKeys" : "dequantiseValues";
  DeviceBuffer dcodes, dscaleZero, dout;
  CSKV_TRY(UploadRaw(dcodes, codes, PackedBytes(tokens * channels, bits), op));
  CSKV_TRY(UploadRaw(dscaleZero, scaleZero, 2 * ScaleZeroPairs(grouping, tokens, channels), op));
  CSKV_TRY(AllocatePoisoned<float>(dout, tokens * channels, op));
  CSKV_TRY(LaunchDequantise(grouping, dcodes.as<uint8_t>(), dscaleZero.as<uint16_t>(), tokens, channels, bits, dout.as<float>(), kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Download(out, op);
}

Status RunQ8Gemv(const float* x, size_t rows, const int8_t* codes, const float* scales, size_t n, size_t k, const float* accumulate, float* out) {
  const char* op = "q8Gemv";
  TypedInput dx;
  DeviceBuffer dcodes, dscales, dout;
  CSKV_TRY(dx.Load(DType::kBf16, x, rows * k, op));
  CSKV_TRY(UploadRaw(dcodes, codes, Q8CodeBytes(n, k), op));
  CSKV_TRY(UploadRaw(dscales, scales, n * Q8BlocksPerRow(k), op));
  if (accumulate != nullptr) CSKV_TRY(UploadRaw(dout, accumulate, rows * n, op));
  else CSKV_TRY(AllocatePoisoned<float>(dout, rows * n, op));
  const Q8Weight w{dcodes.as<int8_t>(), dscales.as<float>(), n, k};
  CSKV_TRY(LaunchQ8Gemv(static_cast<const uint16_t*>(dx.data()), rows, w, dout.as<float>(), accumulate != nullptr ? 1.f : 0.f, kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Download(out, op);
}

Status RunQ8Embedding(const int8_t* codes, const float* scales, size_t n, size_t k, const int32_t* tokens, size_t count, float* out) {
  const char* op = "q8Embedding";
  DeviceBuffer dcodes, dscales, dtokens, dout;
  CSKV_TRY(UploadRaw(dcodes, codes, Q8CodeBytes(n, k), op));
  CSKV_TRY(UploadRaw(dscales, scales, n * Q8BlocksPerRow(k), op));
  CSKV_TRY(UploadRaw(dtokens, tokens, count, op));
  CSKV_TRY(AllocatePoisoned<float>(dout, count * k, op));
  const Q8Weight w{dcodes.as<int8_t>(), dscales.as<float>(), n, k};
  CSKV_TRY(LaunchEmbeddingQ8(w, dtokens.as<int32_t>(), dout.as<float>(), count, kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Download(out, op);
}

Status RunQ8DequantiseRows(const int8_t* codes, const float* scales, size_t n, size_t k, size_t first, size_t count, float* out) {
  const char* op = "q8DequantiseRows";
  DeviceBuffer dcodes, dscales;
  TypedOutput dout;
  CSKV_TRY(UploadRaw(dcodes, codes, Q8CodeBytes(n, k), op));
  CSKV_TRY(UploadRaw(dscales, scales, n * Q8BlocksPerRow(k), op));
  CSKV_TRY(dout.Allocate(DType::kBf16, count * k, op));
  const Q8Weight w{dcodes.as<int8_t>(), dscales.as<float>(), n, k};
  CSKV_TRY(LaunchQ8DequantiseRows(w, first, count, static_cast<uint16_t*>(dout.data()), kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Read(out, op);
}

Status RunQ4Gemv(const float* x, size_t rows, const uint8_t* codes, const uint16_t* scaleMin, size_t n, size_t k, const float* accumulate, float* out) {
  const char* op = "q4Gemv";
  TypedInput dx;
  DeviceBuffer dcodes, dscaleMin, dout;
  CSKV_TRY(dx.Load(DType::kBf16, x, rows * k, op));
  CSKV_TRY(UploadRaw(dcodes, codes, Q4CodeBytes(n, k), op));
  CSKV_TRY(UploadRaw(dscaleMin, scaleMin, Q4ScaleMinCount(n, k), op));
  if (accumulate != nullptr) CSKV_TRY(UploadRaw(dout, accumulate, rows * n, op));
  else CSKV_TRY(AllocatePoisoned<float>(dout, rows * n, op));
  const Q4Weight w{dcodes.as<uint8_t>(), dscaleMin.as<uint16_t>(), n, k};
  CSKV_TRY(LaunchQ4Gemv(static_cast<const uint16_t*>(dx.data()), rows, w, dout.as<float>(), accumulate != nullptr ? 1.f : 0.f, kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Download(out, op);
}

Status RunQ4DequantiseRows(const uint8_t* codes, const uint16_t* scaleMin, size_t n, size_t k, size_t first, size_t count, float* out) {
  const char* op = "q4DequantiseRows";
  DeviceBuffer dcodes, dscaleMin;
  TypedOutput dout;
  CSKV_TRY(UploadRaw(dcodes, codes, Q4CodeBytes(n, k), op));
  CSKV_TRY(UploadRaw(dscaleMin, scaleMin, Q4ScaleMinCount(n, k), op));
  CSKV_TRY(dout.Allocate(DType::kBf16, count * k, op));
  const Q4Weight w{dcodes.as<uint8_t>(), dscaleMin.as<uint16_t>(), n, k};
  CSKV_TRY(LaunchQ4DequantiseRows(w, first, count, static_cast<uint16_t*>(dout.data()), kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Read(out, op);
}

Status RunAttention(const AttentionRun& r, float* out) {
  const char* op = "attention";
  const size_t D = static_cast<size_t>(r.kvHeads) * r.headDim, Q = static_cast<size_t>(r.heads) * r.headDim;
  const int64_t keys = r.start + r.queries;
  DeviceBuffer dq, dfreq, dtable, dpartials;
  TypedInput kRing, vRing, kRebuilt, vRebuilt;
  DeviceBuffer kMean, vMean;
  TypedOutput dout;
  CSKV_TRY(UploadRaw(dq, r.q, r.queries * Q, op));
  CSKV_TRY(kRing.Load(DType::kBf16, r.kRing, r.ringRows * D, op));
  CSKV_TRY(vRing.Load(DType::kBf16, r.vRing, r.ringRows * D, op));
  AttentionArgs a;
  if (r.compressedTokens > 0) {
    CSKV_TRY(kRebuilt.Load(DType::kBf16, r.kRebuilt, r.compressedTokens * D, op));
    CSKV_TRY(vRebuilt.Load(DType::kBf16, r.vRebuilt, r.compressedTokens * D, op));
    CSKV_TRY(UploadRaw(kMean, r.kMean, D, op));
    CSKV_TRY(UploadRaw(vMean, r.vMean, D, op));
    a.kRebuilt = static_cast<const uint16_t*>(kRebuilt.data());
    a.vRebuilt = static_cast<const uint16_t*>(vRebuilt.data());
    a.kMean = kMean.as<float>();
    a.vMean = vMean.as<float>();
  }
  CSKV_TRY(UploadRaw(dfreq, r.invFreq, r.headDim / 2, op));
  CSKV_TRY(AllocatePoisoned<float>(dtable, static_cast<size_t>(keys) * r.headDim, op));
  CSKV_TRY(LaunchRopeTable(dfreq.as<double>(), r.attentionFactor, dtable.as<float>(), keys, r.headDim / 2, kStream));
  const AttentionPlan plan = PlanAttention(r.queries, keys, r.heads, r.multiprocessors);
  CSKV_TRY(AllocatePoisoned<float>(dpartials, plan.partialRows * (r.headDim + 2), op));
  CSKV_TRY(dout.Allocate(DType::kBf16, r.queries * Q, op));
  a.q = dq.as<float>();
  a.qStride = Q;
  a.kRing = static_cast<const uint16_t*>(kRing.data());
  a.vRing = static_cast<const uint16_t*>(vRing.data());
  a.ringRows = r.ringRows;
  a.compressedTokens = r.compressedTokens;
  a.ropeTable = dtable.as<float>();
  a.start = r.start;
  a.queries = r.queries;
  a.heads = r.heads;
  a.kvHeads = r.kvHeads;
  a.headDim = r.headDim;
  a.slidingWindow = r.slidingWindow;
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(r.headDim)));
  a.splits = plan.splits;
  a.keysPerSplit = plan.keysPerSplit;
  a.partials = dpartials.as<float>();
  CSKV_TRY(LaunchAttentionPartials(a, kStream));
  CSKV_TRY(LaunchAttentionCombine(a, static_cast<uint16_t*>(dout.data()), kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Read(out, op);
}

namespace {

// The fused kernels' sources on the device: queries, bf16 rings, pages, transposed bases and means, rope table.
struct FusedDeviceSources {
  DeviceBuffer q, freq, table, pages, kBasis, vBasis, kBasisT, vBasisT, kMean, vMean;
  TypedInput kRing, vRing;

  Status Load(const FusedAttentionInputs& in, const char* op, FusedAttentionSources& a) {
    const size_t D = static_cast<size_t>(in.kvHeads) * in.headDim, Q = static_cast<size_t>(in.heads) * in.headDim;
    const int64_t keys = in.start + in.queries;
    CSKV_TRY(UploadRaw(q, in.q, in.queries * Q, op));
    CSKV_TRY(kRing.Load(DType::kBf16, in.kRing, in.ringRows * D, op));
    CSKV_TRY(vRing.Load(DType::kBf16, in.vRing, in.ringRows * D, op));
    if (in.compressedTokens > 0) {
      const PageLayout page = PlanPage(in.window, in.kRank, in.vRank, in.bits);
      CSKV_TRY(UploadRaw(pages, in.pages, static_cast<size_t>(in.compressedTokens / in.window) * page.bytes, op));
      CSKV_TRY(UploadRaw(kBasis, in.kBasis, D * in.kRank, op));
      CSKV_TRY(UploadRaw(vBasis, in.vBasis, D * in.vRank, op));
      CSKV_TRY(AllocatePoisoned<float>(kBasisT, D * in.kRank, op));
      CSKV_TRY(AllocatePoisoned<float>(vBasisT, D * in.vRank, op));
      CSKV_TRY(LaunchTransposeF32(kBasis.as<float>(), D, in.kRank, kBasisT.as<float>(), kStream));
      CSKV_TRY(LaunchTransposeF32(vBasis.as<float>(), D, in.vRank, vBasisT.as<float>(), kStream));
      CSKV_TRY(UploadRaw(kMean, in.kMean, D, op));
      CSKV_TRY(UploadRaw(vMean, in.vMean, D, op));
      for (PageFeatures* f : {&a.kFeatures, &a.vFeatures}) {
        const bool keysOf = f == &a.kFeatures;
        f->pages = pages.as<uint8_t>();
        f->pageBytes = page.bytes;
        f->dataOffset = keysOf ? page.kData : page.vData;
        f->scaleZeroOffset = keysOf ? page.kScaleZero : page.vScaleZero;
        f->bits = in.bits;
        f->keys = keysOf;
        f->window = in.window;
        f->rank = keysOf ? in.kRank : in.vRank;
      }
      a.kBasisT = kBasisT.as<float>();
      a.vBasisT = vBasisT.as<float>();
      a.kMean = kMean.as<float>();
      a.vMean = vMean.as<float>();
    }
    CSKV_TRY(UploadRaw(freq, in.invFreq, in.headDim / 2, op));
    CSKV_TRY(AllocatePoisoned<float>(table, static_cast<size_t>(keys) * in.headDim, op));
    CSKV_TRY(LaunchRopeTable(freq.as<double>(), in.attentionFactor, table.as<float>(), keys, in.headDim / 2, kStream));
    a.q = q.as<float>();
    a.qStride = Q;
    a.kRing = static_cast<const uint16_t*>(kRing.data());
    a.vRing = static_cast<const uint16_t*>(vRing.data());
    a.ringRows = in.ringRows;
    a.compressedTokens = in.compressedTokens;
    a.ropeTable = table.as<float>();
    a.start = in.start;
    a.queries = in.queries;
    a.heads = in.heads;
    a.kvHeads = in.kvHeads;
    a.headDim = in.headDim;
    a.slidingWindow = in.slidingWindow;
    a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in.headDim)));
    return Status::Ok();
  }
};

}  // namespace

Status RunFusedAttention(const FusedAttentionInputs& in, int multiprocessors, float* out) {
  const char* op = "fusedAttention";
  FusedDeviceSources sources;
  FusedAttentionArgs a;
  CSKV_TRY(sources.Load(in, op, a));
  const AttentionPlan plan = PlanFusedAttention(in.queries, in.start + in.queries, in.heads, in.kvHeads, multiprocessors);
  DeviceBuffer partials;
  TypedOutput dout;
  CSKV_TRY(AllocatePoisoned<float>(partials, plan.partialRows * (in.headDim + 2), op));
  CSKV_TRY(dout.Allocate(DType::kBf16, static_cast<size_t>(in.queries) * in.heads * in.headDim, op));
  a.splits = plan.splits;
  a.keysPerSplit = plan.keysPerSplit;
  a.partials = partials.as<float>();
  CSKV_TRY(LaunchFusedAttentionPartials(a, kStream));
  CSKV_TRY(LaunchAttentionMerge(a.partials, a.queries, a.heads, a.splits, a.headDim, static_cast<uint16_t*>(dout.data()), kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Read(out, op);
}

Status RunFusedPrefillAttention(const FusedAttentionInputs& in, float* out) {
  const char* op = "fusedPrefillAttention";
  FusedDeviceSources sources;
  FusedPrefillAttentionArgs a;
  CSKV_TRY(sources.Load(in, op, a));
  TypedOutput dout;
  a.outStride = static_cast<size_t>(in.heads) * in.headDim;
  CSKV_TRY(dout.Allocate(DType::kBf16, in.queries * a.outStride, op));
  a.out = static_cast<uint16_t*>(dout.data());
  CSKV_TRY(LaunchFusedPrefillAttention(a, kStream));
  CSKV_TRY(Synchronise(op));
  return dout.Read(out, op);
}

Status RunSample(const float* logits, int vocab, bool greedy, float temperature, int topK, float topP, double u, int32_t* token) {
  const char* op = "sample";
  DeviceBuffer dlogits, dtoken;
  CSKV_TRY(UploadRaw(dlogits, logits, vocab, op));
  CSKV_TRY(AllocatePoisoned<int32_t>(dtoken, 1, op));
  SampleParams params;
  params.greedy = greedy;
  params.temperature = temperature;
  params.topK = topK;
  params.topP = topP;
  params.u = u;
  CSKV_TRY(LaunchSample(dlogits.as<float>(), vocab, params, dtoken.as<int32_t>(), kStream));
  CSKV_TRY(Synchronise(op));
  return dtoken.Download(token, op);
}

}  // namespace cskv
