#include "deviceEngine.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../cudaCheck.h"
#include "../deviceBuffer.h"
#include "../kernels/attention.cuh"
#include "../kernels/bias.cuh"
#include "../kernels/convert.cuh"
#include "../kernels/embedding.cuh"
#include "../kernels/fusedAttention.cuh"
#include "../kernels/fusedPrefillAttention.cuh"
#include "../kernels/kvCache.cuh"
#include "../kernels/q4Linear.cuh"
#include "../kernels/q8Linear.cuh"
#include "../kernels/quantise.cuh"
#include "../kernels/rmsNorm.cuh"
#include "../kernels/ropeTable.cuh"
#include "../kernels/sampling.cuh"
#include "../kernels/swiglu.cuh"
#include "gemm.h"

namespace cskv {
namespace {

constexpr size_t kGemmWorkspaceBytes = 32u << 20;
constexpr cudaStream_t kStream = nullptr;  // legacy default stream: ordered with cudaMemcpy

// A device allocation owned by the engine, counted in one of its memory totals.
using Buffer = std::unique_ptr<DeviceBuffer>;

Status Allocate(Buffer& buffer, size_t bytes, const char* what, size_t& total) {
  buffer = std::make_unique<DeviceBuffer>();
  CSKV_TRY(buffer->Allocate(bytes, what));
  total += bytes;
  return Status::Ok();
}

// A linear layer's weight [n, k] (out × in): bf16, or blocks of codes and scales: 8-bit (kernels/q8Layout.h) with
// --weights q8, 4-bit (kernels/q4Layout.h; the scales are f16 (scale, min) pairs) with --weights q4.
struct LinearWeight {
  Buffer bf16;
  Buffer codes, scales;
  size_t n = 0, k = 0;

  Q8Weight q8() const { return Q8Weight{codes->as<int8_t>(), scales->as<float>(), n, k}; }
  Q4Weight q4() const { return Q4Weight{codes->as<uint8_t>(), scales->as<uint16_t>(), n, k}; }
};

// Bytes of the codes and of the scales of `rows` rows of a blockwise weight with k input channels (both linear in
// rows, so they also give a row's offset).
size_t CodeBytes(LinearFormat format, size_t rows, size_t k) { return format == LinearFormat::kQ8 ? Q8CodeBytes(rows, k) : Q4CodeBytes(rows, k); }
size_t ScaleBytes(LinearFormat format, size_t rows, size_t k) {
  return format == LinearFormat::kQ8 ? Q8ScaleBytes(rows, k) : Q4ScaleMinCount(rows, k) * sizeof(uint16_t);
}

Status AllocateLinear(LinearWeight& w, size_t n, size_t k, LinearFormat format, const char* what, size_t& total) {
  w.n = n;
  w.k = k;
  if (format == LinearFormat::kBf16) return Allocate(w.bf16, n * k * 2, what, total);
  CSKV_TRY(Allocate(w.codes, CodeBytes(format, n, k), what, total));
  return Allocate(w.scales, ScaleBytes(format, n, k), what, total);
}

const char* FormatName(LinearFormat format) { return format == LinearFormat::kQ8 ? "q8" : format == LinearFormat::kQ4 ? "q4" : "bf16"; }

struct LayerWeights {
  Buffer inputNorm, postNorm;      // bf16 [H]
  LinearWeight qkv;                // [Q + 2D, H]: q, k, v rows stacked (one GEMM)
  Buffer qkvBias;                  // f32 [Q + 2D]
  LinearWeight o;                  // [H, Q]
  Buffer oBias;                    // f32 [H]
  LinearWeight gateUp;             // [2I, H]: gate rows then up rows
  Buffer gateUpBias;               // f32 [2I]
  LinearWeight down;               // [H, I]
  Buffer downBias;                 // f32 [H]
  Buffer kBasis, vBasis;           // f32 [D, r] (features) ...
  Buffer kBasisBf16, vBasisBf16;   // ... and bf16 (the rebuild GEMM)
  Buffer kBasisT, vBasisT;         // f32 [r, D]: the fused attention kernels' reading order
  Buffer kMean, vMean;             // f32 [D]
};

struct LayerCache {
  Buffer kRing, vRing;        // bf16 [fullCapacity, D]
  Buffer kFeatures, vFeatures;  // f32 [fullCapacity, r]
  Buffer pages;               // [maxBlocks, pageBytes]
};

}  // namespace

struct DeviceEngine::Impl {
  ModelSpec spec;
  CacheLayout layout;
  int multiprocessors = 1;
  int maxChunk = 0;
  Gemm gemm;
  int64_t length = 0;
  int64_t compressed = 0;
  int lastLogitRows = 0;
  Status failure;  // set by the first device fault; every later call returns it
  std::vector<std::pair<TensorRole, int>> loaded;

  size_t weightBytes = 0, scratchBytes = 0, cacheBytes = 0;
  LinearWeight embedding;  // bf16, or q8 blocks with --weights q8 (a tied output head reads the same table)
  Buffer finalNorm;
  LinearWeight lmHead;
  std::vector<LayerWeights> layers;
  std::vector<LayerCache> cache;
  // Scratch, sized for the longest chunk.
  Buffer tokens, x, h, qkv, attention, gateUp, act, logits, partials, sampled;
  Buffer invFreq, ropeTable;
  Buffer features, kRebuilt, vRebuilt;  // CSKV: unpacked features and rebuilt keys/values of the compressed branch
  Buffer q8Tile;  // q8/q4 prefill: dequantised weight rows (bf16), then (when a weight takes several tiles) their output columns (f32)
  size_t q8TileBytes = 0;
  int64_t ropePositions = 0;

  Status Fail(const Status& status) {
    // Argument errors leave the engine usable; anything from the device does not.
    if (!status.ok() && status.code != "BAD_ARGUMENT" && failure.ok()) failure = status;
    return status;
  }
  Status Usable(const char* operation) const {
    if (failure.ok()) return Status::Ok();
    return Status::Error(failure.code, std::string(operation) + ": the engine failed earlier and must be reloaded: " + failure.message);
  }

  Status Allocate();
  Status Convert(const std::string& dtype, const uint8_t* data, size_t elements, void* destination, bool toBf16);
  Status Load(TensorRole role, int layer, const std::string& dtype, const uint8_t* data, size_t bytes);
  // 8- or 4-bit blocks of a linear weight: codes and scales as bytes (q8: f32 scales; q4: f16 (scale, min) pairs).
  Status LoadBlocks(LinearFormat format, TensorRole role, int layer, const void* codes, size_t codeBytes, const void* scales, size_t scaleBytes);
  // The linear weight a role's rows land in, and the first of those rows; null for other roles.
  LinearWeight* LinearOf(TensorRole role, int layer, size_t& firstRow);
  Status Linear(const std::string& op, size_t T, const uint16_t* a, const LinearWeight& w, float* out, float beta);
  Status BuildRope(const double* frequencies, int64_t positions);
  Status Layer(int i, size_t count);
  FusedAttentionSources FusedSources(int i, size_t count) const;
  Status FusedAttention(int i, size_t count);
  Status FusedPrefillAttention(int i, size_t count);
  Status Commit();
  Status Run(const int32_t* hostTokens, size_t count, const double* frequencies, int logitRows, float* logitsOut);
};

Status DeviceEngine::Impl::Allocate() {
  const ModelSpec& s = spec;
  const size_t H = s.hidden, Q = s.qDim(), D = s.kvDim(), I = s.intermediate, V = s.vocab, L = s.layers;
  const size_t b16 = 2, f32 = 4;
  const LinearFormat format = s.weights;
  CSKV_TRY(AllocateLinear(embedding, V, H, format == LinearFormat::kQ8 ? format : LinearFormat::kBf16, "embedding", weightBytes));
  if (!s.tiedEmbeddings) CSKV_TRY(AllocateLinear(lmHead, V, H, format, "lm head", weightBytes));
  CSKV_TRY(cskv::Allocate(finalNorm, H * b16, "final norm", weightBytes));
  layers.resize(L);
  cache.resize(L);
  for (size_t i = 0; i < L; i++) {
    LayerWeights& w = layers[i];
    CSKV_TRY(cskv::Allocate(w.inputNorm, H * b16, "layer weights", weightBytes));
    CSKV_TRY(cskv::Allocate(w.postNorm, H * b16, "layer weights", weightBytes));
    CSKV_TRY(AllocateLinear(w.qkv, Q + 2 * D, H, format, "layer weights", weightBytes));
    CSKV_TRY(AllocateLinear(w.o, H, Q, format, "layer weights", weightBytes));
    CSKV_TRY(AllocateLinear(w.gateUp, 2 * I, H, format, "layer weights", weightBytes));
    CSKV_TRY(AllocateLinear(w.down, H, I, format, "layer weights", weightBytes));
    if (s.qkvBias) CSKV_TRY(cskv::Allocate(w.qkvBias, (Q + 2 * D) * f32, "layer weights", weightBytes));
    if (s.outputBias) CSKV_TRY(cskv::Allocate(w.oBias, H * f32, "layer weights", weightBytes));
    if (s.mlpBias) {
      CSKV_TRY(cskv::Allocate(w.gateUpBias, 2 * I * f32, "layer weights", weightBytes));
      CSKV_TRY(cskv::Allocate(w.downBias, H * f32, "layer weights", weightBytes));
    }
    const LayerLayout& l = layout.layers[i];
    LayerCache& c = cache[i];
    const size_t ring = layout.fullCapacity;
    CSKV_TRY(cskv::Allocate(c.kRing, ring * D * b16, "cache (full-precision ring)", cacheBytes));
    CSKV_TRY(cskv::Allocate(c.vRing, ring * D * b16, "cache (full-precision ring)", cacheBytes));
    if (s.cache.compressed()) {
      CSKV_TRY(cskv::Allocate(w.kBasis, D * l.kRank * f32, "CSKV factors", weightBytes));
      CSKV_TRY(cskv::Allocate(w.vBasis, D * l.vRank * f32, "CSKV factors", weightBytes));
      CSKV_TRY(cskv::Allocate(w.kBasisBf16, D * l.kRank * b16, "CSKV factors", weightBytes));
      CSKV_TRY(cskv::Allocate(w.vBasisBf16, D * l.vRank * b16, "CSKV factors", weightBytes));
      if (s.fusedAttention()) {
        CSKV_TRY(cskv::Allocate(w.kBasisT, D * l.kRank * f32, "CSKV factors", weightBytes));
        CSKV_TRY(cskv::Allocate(w.vBasisT, D * l.vRank * f32, "CSKV factors", weightBytes));
      }
      CSKV_TRY(cskv::Allocate(w.kMean, D * f32, "CSKV factors", weightBytes));
      CSKV_TRY(cskv::Allocate(w.vMean, D * f32, "CSKV factors", weightBytes));
      CSKV_TRY(cskv::Allocate(c.kFeatures, ring * l.kRank * f32, "cache (pending features)", cacheBytes));
      CSKV_TRY(cskv::Allocate(c.vFeatures, ring * l.vRank * f32, "cache (pending features)", cacheBytes));
      CSKV_TRY(cskv::Allocate(c.pages, layout.maxBlocks * l.page.bytes, "cache (compressed pages)", cacheBytes));
    }
  }
  const size_t T = maxChunk;
  CSKV_TRY(cskv::Allocate(tokens, T * sizeof(int32_t), "scratch", scratchBytes));
  CSKV_TRY(cskv::Allocate(x, T * H * f32, "scratch", scratchBytes));
  CSKV_TRY(cskv::Allocate(h, T * H * b16, "scratch", scratchBytes));
  CSKV_TRY(cskv::Allocate(qkv, T * (Q + 2 * D) * f32, "scratch", scratchBytes));
  CSKV_TRY(cskv::Allocate(attention, T * Q * b16, "scratch", scratchBytes));
  CSKV_TRY(cskv::Allocate(gateUp, T * 2 * I * f32, "scratch", scratchBytes));
  CSKV_TRY(cskv::Allocate(act, T * I * b16, "scratch", scratchBytes));
  CSKV_TRY(cskv::Allocate(logits, T * V * f32, "scratch (logits)", scratchBytes));
  size_t partialRows = MaxAttentionPartialRows(T, s.heads, multiprocessors);
  if (s.fusedDecodeAttention) {
    const int64_t decodeRows = std::min<int64_t>(T, kFusedDecodeMaxQueries);
    partialRows = std::max(partialRows, MaxFusedAttentionPartialRows(decodeRows, s.heads, s.kvHeads, multiprocessors));
  }
  CSKV_TRY(cskv::Allocate(partials, partialRows * (s.headDim + 2) * f32, "scratch (attention)", scratchBytes));
  CSKV_TRY(cskv::Allocate(sampled, sizeof(int32_t), "scratch", scratchBytes));
  CSKV_TRY(cskv::Allocate(invFreq, (s.headDim / 2) * sizeof(double), "rope", scratchBytes));
  CSKV_TRY(cskv::Allocate(ropeTable, static_cast<size_t>(layout.capacityTokens) * s.headDim * f32, "rope table", scratchBytes));
  if (format != LinearFormat::kBf16) {
    // One tile of the largest weight, or the whole weight when it fits (q8Layout.h: kQ8TileBytes).
    size_t largest = (Q + 2 * D) * H;
    const bool headInBlocks = !s.tiedEmbeddings || format == LinearFormat::kQ8;
    for (size_t elements : {H * Q, 2 * I * H, H * I, headInBlocks ? V * H : size_t{0}}) largest = std::max(largest, elements);
    q8TileBytes = std::min(kQ8TileBytes, largest * b16);
    CSKV_TRY(cskv::Allocate(q8Tile, q8TileBytes, "scratch (quantised weights' prefill tile)", scratchBytes));
  }
  if (s.cache.compressed()) {
    int maxRank = 0;
    for (const LayerLayout& l : layout.layers) maxRank = std::max({maxRank, l.kRank, l.vRank});
    const size_t capacity = layout.capacityTokens;
    CSKV_TRY(cskv::Allocate(features, capacity * maxRank * b16, "scratch (compressed features)", scratchBytes));
    CSKV_TRY(cskv::Allocate(kRebuilt, capacity * D * b16, "scratch (rebuilt keys)", scratchBytes));
    CSKV_TRY(cskv::Allocate(vRebuilt, capacity * D * b16, "scratch (rebuilt values)", scratchBytes));
  }
  return Status::Ok();
}

Status DeviceEngine::Impl::Convert(const std::string& dtype, const uint8_t* data, size_t elements, void* destination, bool toBf16) {
  const char* op = "loadTensor";
  const size_t itemBytes = dtype == "F32" ? 4 : 2;
  if (toBf16 && dtype == "BF16") {
    CSKV_CUDA_TRY(cudaMemcpy(destination, data, elements * 2, cudaMemcpyHostToDevice), op);
    return Status::Ok();
  }
  if (!toBf16 && dtype == "F32") {
    CSKV_CUDA_TRY(cudaMemcpy(destination, data, elements * 4, cudaMemcpyHostToDevice), op);
    return Status::Ok();
  }
  // Through a staging copy of the checkpoint's bytes, converted on the device.
  DeviceBuffer staging;
  CSKV_TRY(staging.Allocate(elements * itemBytes, op));
  CSKV_TRY(staging.Upload(data, op));
  if (toBf16 && dtype == "F32") CSKV_TRY(LaunchF32ToBf16(staging.as<float>(), static_cast<uint16_t*>(destination), elements, kStream));
  else if (toBf16) CSKV_TRY(LaunchF16ToBf16(staging.as<uint16_t>(), static_cast<uint16_t*>(destination), elements, kStream));
  else if (dtype == "BF16") CSKV_TRY(LaunchBf16ToF32(staging.as<uint16_t>(), static_cast<float*>(destination), elements, kStream));
  else CSKV_TRY(LaunchF16ToF32(staging.as<uint16_t>(), static_cast<float*>(destination), elements, kStream));
  CSKV_CUDA_TRY(cudaDeviceSynchronize(), op);  // before the staging copy is freed
  return Status::Ok();
}

Status DeviceEngine::Impl::Load(TensorRole role, int layer, const std::string& dtype, const uint8_t* data, size_t bytes) {
  const std::string where = std::string("loadTensor ") + TensorRoleName(role) + (IsLayerRole(role) ? " of layer " + std::to_string(layer) : "");
  if (dtype != "F32" && dtype != "F16" && dtype != "BF16") return Status::Error("BAD_ARGUMENT", where + ": dtype must be F32, F16 or BF16");
  if (IsLayerRole(role) ? (layer < 0 || layer >= spec.layers) : layer != -1) return Status::Error("BAD_ARGUMENT", where + ": layer index out of range");
  const size_t elements = TensorRoleElements(spec, role, layer);
  if (elements == 0) return Status::Error("BAD_ARGUMENT", where + ": this model takes no such tensor");
  size_t firstRow = 0;
  if (spec.weights != LinearFormat::kBf16 && LinearOf(role, layer, firstRow) != nullptr) {
    return Status::Error("BAD_ARGUMENT", where + ": with " + FormatName(spec.weights) + " weights this tensor comes as blocks (" +
                                             (spec.weights == LinearFormat::kQ8 ? "loadTensorQ8" : "loadTensorQ4") + ")");
  }
  const size_t itemBytes = dtype == "F32" ? 4 : 2;
  if (bytes != elements * itemBytes) {
    return Status::Error("BAD_ARGUMENT", where + ": " + std::to_string(bytes) + " bytes, expected " + std::to_string(elements) + " " + dtype + " elements");
  }
  const size_t H = spec.hidden, Q = spec.qDim(), D = spec.kvDim(), I = spec.intermediate;
  LayerWeights* w = layer >= 0 ? &layers[layer] : nullptr;
  auto bf16At = [](Buffer& b, size_t offset) { return static_cast<void*>(b->as<uint16_t>() + offset); };
  auto f32At = [](Buffer& b, size_t offset) { return static_cast<void*>(b->as<float>() + offset); };
  Status status;
  switch (role) {
    case TensorRole::kEmbedding: status = Convert(dtype, data, elements, bf16At(embedding.bf16, 0), true); break;
    case TensorRole::kLmHead: status = Convert(dtype, data, elements, bf16At(lmHead.bf16, 0), true); break;
    case TensorRole::kFinalNorm: status = Convert(dtype, data, elements, bf16At(finalNorm, 0), true); break;
    case TensorRole::kInputNorm: status = Convert(dtype, data, elements, bf16At(w->inputNorm, 0), true); break;
    case TensorRole::kPostNorm: status = Convert(dtype, data, elements, bf16At(w->postNorm, 0), true); break;
    case TensorRole::kQ: status = Convert(dtype, data, elements, bf16At(w->qkv.bf16, 0), true); break;
    case TensorRole::kK: status = Convert(dtype, data, elements, bf16At(w->qkv.bf16, Q * H), true); break;
    case TensorRole::kV: status = Convert(dtype, data, elements, bf16At(w->qkv.bf16, (Q + D) * H), true); break;
    case TensorRole::kQBias: status = Convert(dtype, data, elements, f32At(w->qkvBias, 0), false); break;
    case TensorRole::kKBias: status = Convert(dtype, data, elements, f32At(w->qkvBias, Q), false); break;
    case TensorRole::kVBias: status = Convert(dtype, data, elements, f32At(w->qkvBias, Q + D), false); break;
    case TensorRole::kO: status = Convert(dtype, data, elements, bf16At(w->o.bf16, 0), true); break;
    case TensorRole::kOBias: status = Convert(dtype, data, elements, f32At(w->oBias, 0), false); break;
    case TensorRole::kGate: status = Convert(dtype, data, elements, bf16At(w->gateUp.bf16, 0), true); break;
    case TensorRole::kUp: status = Convert(dtype, data, elements, bf16At(w->gateUp.bf16, I * H), true); break;
    case TensorRole::kGateBias: status = Convert(dtype, data, elements, f32At(w->gateUpBias, 0), false); break;
    case TensorRole::kUpBias: status = Convert(dtype, data, elements, f32At(w->gateUpBias, I), false); break;
    case TensorRole::kDown: status = Convert(dtype, data, elements, bf16At(w->down.bf16, 0), true); break;
    case TensorRole::kDownBias: status = Convert(dtype, data, elements, f32At(w->downBias, 0), false); break;
    case TensorRole::kKMean: status = Convert(dtype, data, elements, f32At(w->kMean, 0), false); break;
    case TensorRole::kVMean: status = Convert(dtype, data, elements, f32At(w->vMean, 0), false); break;
    case TensorRole::kKBasis:
    case TensorRole::kVBasis: {
      Buffer& f = role == TensorRole::kKBasis ? w->kBasis : w->vBasis;
      Buffer& b = role == TensorRole::kKBasis ? w->kBasisBf16 : w->vBasisBf16;
      status = Convert(dtype, data, elements, f32At(f, 0), false);
      if (status.ok()) status = LaunchF32ToBf16(f->as<float>(), b->as<uint16_t>(), elements, kStream);
      if (status.ok() && spec.fusedAttention()) {
        Buffer& t = role == TensorRole::kKBasis ? w->kBasisT : w->vBasisT;
        status = LaunchTransposeF32(f->as<float>(), D, elements / D, t->as<float>(), kStream);
      }
      break;
    }
  }
  if (!status.ok()) return Status::Error(status.code, where + ": " + status.message);
  loaded.emplace_back(role, layer);
  return Status::Ok();
}

LinearWeight* DeviceEngine::Impl::LinearOf(TensorRole role, int layer, size_t& firstRow) {
  const size_t Q = spec.qDim(), D = spec.kvDim(), I = spec.intermediate;
  firstRow = 0;
  if (role == TensorRole::kLmHead) return spec.tiedEmbeddings ? nullptr : &lmHead;
  if (role == TensorRole::kEmbedding) return spec.weights == LinearFormat::kQ8 ? &embedding : nullptr;
  if (layer < 0 || layer >= spec.layers) return nullptr;
  LayerWeights& w = layers[layer];
  switch (role) {
    case TensorRole::kQ: return &w.qkv;
    case TensorRole::kK: firstRow = Q; return &w.qkv;
    case TensorRole::kV: firstRow = Q + D; return &w.qkv;
    case TensorRole::kO: return &w.o;
    case TensorRole::kGate: return &w.gateUp;
    case TensorRole::kUp: firstRow = I; return &w.gateUp;
    case TensorRole::kDown: return &w.down;
    default: return nullptr;
  }
}

Status DeviceEngine::Impl::LoadBlocks(LinearFormat format, TensorRole role, int layer, const void* codes, size_t codeBytes, const void* scales, size_t scaleBytes) {
  const char* op = format == LinearFormat::kQ8 ? "loadTensorQ8 " : "loadTensorQ4 ";
  const std::string where = op + std::string(TensorRoleName(role)) + (IsLayerRole(role) ? " of layer " + std::to_string(layer) : "");
  if (spec.weights != format) {
    return Status::Error("BAD_ARGUMENT", where + ": the engine holds " + FormatName(spec.weights) + " weights (create it with weights \"" + FormatName(format) + "\")");
  }
  if (IsLayerRole(role) ? (layer < 0 || layer >= spec.layers) : layer != -1) return Status::Error("BAD_ARGUMENT", where + ": layer index out of range");
  size_t firstRow = 0;
  LinearWeight* w = LinearOf(role, layer, firstRow);
  if (w == nullptr) return Status::Error("BAD_ARGUMENT", where + ": not a linear layer's weight (only those take blocks)");
  const size_t elements = TensorRoleElements(spec, role, layer);
  const size_t rows = elements / w->k;
  if (codeBytes != CodeBytes(format, rows, w->k) || scaleBytes != ScaleBytes(format, rows, w->k)) {
    return Status::Error("BAD_ARGUMENT", where + ": " + std::to_string(codeBytes) + " bytes of codes and " + std::to_string(scaleBytes) + " of scales, expected " +
                                             std::to_string(CodeBytes(format, rows, w->k)) + " and " + std::to_string(ScaleBytes(format, rows, w->k)) + " for [" +
                                             std::to_string(rows) + ", " + std::to_string(w->k) + "]");
  }
  Status status = CudaStatus(cudaMemcpy(w->codes->as<uint8_t>() + CodeBytes(format, firstRow, w->k), codes, codeBytes, cudaMemcpyHostToDevice), "cudaMemcpy", where.c_str());
  if (status.ok()) {
    status = CudaStatus(cudaMemcpy(w->scales->as<uint8_t>() + ScaleBytes(format, firstRow, w->k), scales, scaleBytes, cudaMemcpyHostToDevice), "cudaMemcpy", where.c_str());
  }
  if (!status.ok()) return status;
  loaded.emplace_back(role, layer);
  return Status::Ok();
}

// out[T, n] = beta * out + a[T, k] · W^T. q8/q4 weights: the GEMV for decode's few rows; for prefill, tiles of
// weight rows dequantised to bf16 scratch and multiplied by cuBLASLt (the whole weight at once when it fits the tile).
Status DeviceEngine::Impl::Linear(const std::string& op, size_t T, const uint16_t* a, const LinearWeight& w, float* out, float beta) {
  if (spec.weights == LinearFormat::kBf16) return gemm.Run(op.c_str(), T, w.n, w.k, a, w.bf16->as<uint16_t>(), GemmOut::kF32, out, beta, kStream);
  const bool q8 = spec.weights == LinearFormat::kQ8;
  static_assert(kQ8GemvMaxRows == kQ4GemvMaxRows, "decode rows take the GEMV in both formats");
  if (T <= static_cast<size_t>(kQ8GemvMaxRows)) {
    const Status status = q8 ? LaunchQ8Gemv(a, T, w.q8(), out, beta, kStream) : LaunchQ4Gemv(a, T, w.q4(), out, beta, kStream);
    return status.ok() ? status : Status::Error(status.code, op + ": " + status.message);
  }
  auto dequantise = [&](size_t first, size_t count, uint16_t* tile) {
    return q8 ? LaunchQ8DequantiseRows(w.q8(), first, count, tile, kStream) : LaunchQ4DequantiseRows(w.q4(), first, count, tile, kStream);
  };
  uint16_t* tile = q8Tile->as<uint16_t>();
  if (w.n * w.k * 2 <= q8TileBytes) {
    CSKV_TRY(dequantise(0, w.n, tile));
    return gemm.Run(op.c_str(), T, w.n, w.k, a, tile, GemmOut::kF32, out, beta, kStream);
  }
  // Rows per tile such that the bf16 rows and their f32 output columns [T, rows] share the scratch.
  const size_t rows = (q8TileBytes - 256) / (w.k * 2 + static_cast<size_t>(maxChunk) * 4) / 16 * 16;
  if (rows == 0) return Status::Error("BAD_ARGUMENT", op + ": a " + FormatName(spec.weights) + " weight row of " + std::to_string(w.k) + " does not fit the prefill tile");
  float* columns = reinterpret_cast<float*>(q8Tile->as<uint8_t>() + (rows * w.k * 2 + 255) / 256 * 256);
  for (size_t first = 0; first < w.n; first += rows) {
    const size_t count = std::min(rows, w.n - first);
    CSKV_TRY(dequantise(first, count, tile));
    CSKV_TRY(gemm.Run(op.c_str(), T, count, w.k, a, tile, GemmOut::kF32, columns, 0.f, kStream));
    CSKV_TRY(LaunchAddColumns(out, w.n, columns, T, first, count, beta, kStream));
  }
  return Status::Ok();
}

Status DeviceEngine::Impl::BuildRope(const double* frequencies, int64_t positions) {
  const int half = spec.headDim / 2;
  CSKV_CUDA_TRY(cudaMemcpy(invFreq->as<double>(), frequencies, half * sizeof(double), cudaMemcpyHostToDevice), "rope");
  CSKV_TRY(LaunchRopeTable(invFreq->as<double>(), spec.attentionFactor, ropeTable->as<float>(), positions, half, kStream));
  ropePositions = positions;
  return Status::Ok();
}

Status DeviceEngine::Impl::Layer(int i, size_t T) {
  const ModelSpec& s = spec;
  const int64_t H = s.hidden, Q = s.qDim(), D = s.kvDim(), I = s.intermediate;
  LayerWeights& w = layers[i];
  LayerCache& c = cache[i];
  const LayerLayout& l = layout.layers[i];
  const std::string op = "layer " + std::to_string(i);
  uint16_t* hb = h->as<uint16_t>();
  float* xf = x->as<float>();
  float* qkvf = qkv->as<float>();

  CSKV_TRY(LaunchRmsNormToBf16(xf, w.inputNorm->as<uint16_t>(), hb, T, H, s.rmsNormEps, kStream));
  CSKV_TRY(Linear(op + " qkv projection", T, hb, w.qkv, qkvf, 0.f));
  if (s.qkvBias) CSKV_TRY(LaunchAddBias(qkvf, w.qkvBias->as<float>(), T, Q + 2 * D, Q + 2 * D, kStream));
  CSKV_TRY(LaunchWriteKv(qkvf, Q + 2 * D, Q, Q + D, c.kRing->as<uint16_t>(), c.vRing->as<uint16_t>(), length, T, D, layout.fullCapacity, kStream));

  // The fused kernels (options, decode and prefill): the compressed branch is read from its pages inside the attention.
  const bool decodeChunk = T <= static_cast<size_t>(kFusedDecodeMaxQueries);
  const bool fused = decodeChunk ? s.fusedDecodeAttention : s.fusedPrefillAttention;
  AttentionArgs a;
  if (s.cache.compressed()) {
    CSKV_TRY(LaunchProjectFeatures(qkvf, Q + 2 * D, Q, w.kMean->as<float>(), w.kBasis->as<float>(), c.kFeatures->as<float>(), length, T, D, l.kRank,
                                   layout.fullCapacity, kStream));
    CSKV_TRY(LaunchProjectFeatures(qkvf, Q + 2 * D, Q + D, w.vMean->as<float>(), w.vBasis->as<float>(), c.vFeatures->as<float>(), length, T, D,
                                   l.vRank, layout.fullCapacity, kStream));
    if (compressed > 0 && !fused) {
      // Rebuild the compressed branch: features (unpacked to bf16) times the basis, keys and values alike.
      const uint8_t* pages = c.pages->as<uint8_t>();
      const int bits = s.cache.bits, W = s.cache.window;
      uint16_t* feats = features->as<uint16_t>();
      CSKV_TRY(LaunchUnpackFeatures(pages, l.page.bytes, l.page.kData, l.page.kScaleZero, bits, QuantGrouping::kKeysPerChannel, W, l.kRank, compressed,
                                    feats, kStream));
      CSKV_TRY(gemm.Run((op + " key rebuild").c_str(), compressed, D, l.kRank, feats, w.kBasisBf16->as<uint16_t>(), GemmOut::kBf16,
                        kRebuilt->as<uint16_t>(), 0.f, kStream));
      CSKV_TRY(LaunchUnpackFeatures(pages, l.page.bytes, l.page.vData, l.page.vScaleZero, bits, QuantGrouping::kValuesPerTokenGroup, W, l.vRank,
                                    compressed, feats, kStream));
      CSKV_TRY(gemm.Run((op + " value rebuild").c_str(), compressed, D, l.vRank, feats, w.vBasisBf16->as<uint16_t>(), GemmOut::kBf16,
                        vRebuilt->as<uint16_t>(), 0.f, kStream));
      a.kRebuilt = kRebuilt->as<uint16_t>();
      a.vRebuilt = vRebuilt->as<uint16_t>();
      a.kMean = w.kMean->as<float>();
      a.vMean = w.vMean->as<float>();
    }
  }
  if (fused) {
    CSKV_TRY(decodeChunk ? FusedAttention(i, T) : FusedPrefillAttention(i, T));
  } else {
    const AttentionPlan plan = PlanAttention(T, length + T, s.heads, multiprocessors);
    a.q = qkvf;
    a.qStride = Q + 2 * D;
    a.kRing = c.kRing->as<uint16_t>();
    a.vRing = c.vRing->as<uint16_t>();
    a.ringRows = layout.fullCapacity;
    a.compressedTokens = compressed;
    a.ropeTable = ropeTable->as<float>();
    a.start = length;
    a.queries = static_cast<int>(T);
    a.heads = s.heads;
    a.kvHeads = s.kvHeads;
    a.headDim = s.headDim;
    a.slidingWindow = s.slidingWindow;
    a.scale = 1.f / std::sqrt(static_cast<float>(s.headDim));
    a.splits = plan.splits;
    a.keysPerSplit = plan.keysPerSplit;
    a.partials = partials->as<float>();
    CSKV_TRY(LaunchAttentionPartials(a, kStream));
    CSKV_TRY(LaunchAttentionCombine(a, attention->as<uint16_t>(), kStream));
  }
  // The output projection adds into the residual stream (beta = 1).
  CSKV_TRY(Linear(op + " output projection", T, attention->as<uint16_t>(), w.o, xf, 1.f));
  if (s.outputBias) CSKV_TRY(LaunchAddBias(xf, w.oBias->as<float>(), T, H, H, kStream));

  CSKV_TRY(LaunchRmsNormToBf16(xf, w.postNorm->as<uint16_t>(), hb, T, H, s.rmsNormEps, kStream));
  CSKV_TRY(Linear(op + " gate/up projection", T, hb, w.gateUp, gateUp->as<float>(), 0.f));
  if (s.mlpBias) CSKV_TRY(LaunchAddBias(gateUp->as<float>(), w.gateUpBias->as<float>(), T, 2 * I, 2 * I, kStream));
  CSKV_TRY(LaunchSwigluRows(gateUp->as<float>(), act->as<uint16_t>(), T, I, kStream));
  CSKV_TRY(Linear(op + " down projection", T, act->as<uint16_t>(), w.down, xf, 1.f));
  if (s.mlpBias) CSKV_TRY(LaunchAddBias(xf, w.downBias->as<float>(), T, H, H, kStream));
  return Status::Ok();
}

// Layer i's queries (qkv scratch) and both cache branches where they are kept, as the fused kernels read them.
FusedAttentionSources DeviceEngine::Impl::FusedSources(int i, size_t T) const {
  const ModelSpec& s = spec;
  const size_t Q = s.qDim(), D = s.kvDim();
  const LayerWeights& w = layers[i];
  const LayerCache& c = cache[i];
  const LayerLayout& l = layout.layers[i];
  FusedAttentionSources a;
  if (compressed > 0) {
    for (PageFeatures* f : {&a.kFeatures, &a.vFeatures}) {
      const bool keys = f == &a.kFeatures;
      f->pages = c.pages->as<uint8_t>();
      f->pageBytes = l.page.bytes;
      f->dataOffset = keys ? l.page.kData : l.page.vData;
      f->scaleZeroOffset = keys ? l.page.kScaleZero : l.page.vScaleZero;
      f->bits = s.cache.bits;
      f->keys = keys;
      f->window = s.cache.window;
      f->rank = keys ? l.kRank : l.vRank;
    }
    a.kBasisT = w.kBasisT->as<float>();
    a.vBasisT = w.vBasisT->as<float>();
    a.kMean = w.kMean->as<float>();
    a.vMean = w.vMean->as<float>();
  }
  a.q = qkv->as<float>();
  a.qStride = Q + 2 * D;
  a.kRing = c.kRing->as<uint16_t>();
  a.vRing = c.vRing->as<uint16_t>();
  a.ringRows = layout.fullCapacity;
  a.compressedTokens = compressed;
  a.ropeTable = ropeTable->as<float>();
  a.start = length;
  a.queries = static_cast<int>(T);
  a.heads = s.heads;
  a.kvHeads = s.kvHeads;
  a.headDim = s.headDim;
  a.slidingWindow = s.slidingWindow;
  a.scale = 1.f / std::sqrt(static_cast<float>(s.headDim));
  return a;
}

// Attention of a decode step's queries into `attention`: split over the keys, then merged.
Status DeviceEngine::Impl::FusedAttention(int i, size_t T) {
  FusedAttentionArgs a;
  static_cast<FusedAttentionSources&>(a) = FusedSources(i, T);
  const AttentionPlan plan = PlanFusedAttention(T, length + T, spec.heads, spec.kvHeads, multiprocessors);
  a.splits = plan.splits;
  a.keysPerSplit = plan.keysPerSplit;
  a.partials = partials->as<float>();
  CSKV_TRY(LaunchFusedAttentionPartials(a, kStream));
  return LaunchAttentionMerge(a.partials, a.queries, a.heads, a.splits, a.headDim, attention->as<uint16_t>(), kStream);
}

// Attention of a prefill chunk's queries into `attention`: one launch, tiles of query rows, no merge.
Status DeviceEngine::Impl::FusedPrefillAttention(int i, size_t T) {
  FusedPrefillAttentionArgs a;
  static_cast<FusedAttentionSources&>(a) = FusedSources(i, T);
  a.out = attention->as<uint16_t>();
  a.outStride = spec.qDim();
  return LaunchFusedPrefillAttention(a, kStream);
}

// Every complete block below floor(length / W) * W leaves the window: its features are stored in its page.
Status DeviceEngine::Impl::Commit() {
  const int64_t boundary = CompressedBoundary(layout, length);
  const int W = spec.cache.window, bits = spec.cache.bits;
  for (int64_t start = compressed; start < boundary; start += W) {
    const int64_t block = start / W;
    const size_t slot = static_cast<size_t>(start % layout.fullCapacity);  // blocks never wrap: the ring is whole blocks
    for (int i = 0; i < spec.layers; i++) {
      const LayerLayout& l = layout.layers[i];
      LayerCache& c = cache[i];
      uint8_t* page = c.pages->as<uint8_t>() + block * l.page.bytes;
      const float* k = c.kFeatures->as<float>() + slot * l.kRank;
      const float* v = c.vFeatures->as<float>() + slot * l.vRank;
      if (bits == 16) {
        CSKV_TRY(LaunchStoreFeatures16(k, reinterpret_cast<uint16_t*>(page + l.page.kData), static_cast<size_t>(W) * l.kRank, kStream));
        CSKV_TRY(LaunchStoreFeatures16(v, reinterpret_cast<uint16_t*>(page + l.page.vData), static_cast<size_t>(W) * l.vRank, kStream));
      } else {
        CSKV_TRY(LaunchQuantise(QuantGrouping::kKeysPerChannel, k, W, l.kRank, bits, page + l.page.kData, reinterpret_cast<uint16_t*>(page + l.page.kScaleZero),
                                kStream));
        CSKV_TRY(LaunchQuantise(QuantGrouping::kValuesPerTokenGroup, v, W, l.vRank, bits, page + l.page.vData,
                                reinterpret_cast<uint16_t*>(page + l.page.vScaleZero), kStream));
      }
    }
  }
  compressed = std::max(compressed, boundary);
  return Status::Ok();
}

Status DeviceEngine::Impl::Run(const int32_t* hostTokens, size_t T, const double* frequencies, int logitRows, float* logitsOut) {
  const char* op = "forward";
  CSKV_CUDA_TRY(cudaSetDevice(spec.device), op);
  const int64_t S = length + static_cast<int64_t>(T);
  if (frequencies != nullptr) CSKV_TRY(BuildRope(frequencies, S));
  CSKV_CUDA_TRY(cudaMemcpy(tokens->as<int32_t>(), hostTokens, T * sizeof(int32_t), cudaMemcpyHostToDevice), op);
  if (spec.weights == LinearFormat::kQ8) CSKV_TRY(LaunchEmbeddingQ8(embedding.q8(), tokens->as<int32_t>(), x->as<float>(), T, kStream));
  else CSKV_TRY(LaunchEmbedding(embedding.bf16->as<uint16_t>(), tokens->as<int32_t>(), x->as<float>(), T, spec.hidden, kStream));
  for (int i = 0; i < spec.layers; i++) CSKV_TRY(Layer(i, T));
  length = S;
  CSKV_TRY(Commit());
  lastLogitRows = logitRows;
  if (logitRows > 0) {
    const size_t H = spec.hidden;
    CSKV_TRY(LaunchRmsNormToBf16(x->as<float>() + (T - logitRows) * H, finalNorm->as<uint16_t>(), h->as<uint16_t>(), logitRows, H, spec.rmsNormEps,
                                 kStream));
    // A tied head reads the embedding table: bf16 through cuBLASLt, q8 through the blockwise path like any head.
    const LinearWeight& head = spec.tiedEmbeddings ? embedding : lmHead;
    if (spec.tiedEmbeddings && spec.weights != LinearFormat::kQ8) {
      CSKV_TRY(gemm.Run("output head", logitRows, spec.vocab, H, h->as<uint16_t>(), head.bf16->as<uint16_t>(), GemmOut::kF32, logits->as<float>(), 0.f, kStream));
    } else {
      CSKV_TRY(Linear("output head", logitRows, h->as<uint16_t>(), head, logits->as<float>(), 0.f));
    }
  }
  // Surfaces any asynchronous fault of this forward under its name.
  CSKV_CUDA_TRY(cudaDeviceSynchronize(), op);
  if (logitsOut != nullptr && logitRows > 0) {
    CSKV_CUDA_TRY(cudaMemcpy(logitsOut, logits->as<float>(), static_cast<size_t>(logitRows) * spec.vocab * sizeof(float), cudaMemcpyDeviceToHost), op);
  }
  return Status::Ok();
}

DeviceEngine::DeviceEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceEngine::~DeviceEngine() = default;

Status DeviceEngine::Create(const ModelSpec& spec, const std::string& cublasLtPath, std::unique_ptr<DeviceEngine>& engine) {
  CSKV_TRY(ValidateModelSpec(spec));
  auto impl = std::make_unique<Impl>();
  impl->spec = spec;
  CSKV_TRY(PlanCache(spec.cache, impl->layout));
  impl->maxChunk = impl->layout.maxChunkTokens;
  const char* op = "createEngine";
  CSKV_CUDA_TRY(cudaSetDevice(spec.device), op);
  CSKV_CUDA_TRY(cudaDeviceGetAttribute(&impl->multiprocessors, cudaDevAttrMultiProcessorCount, spec.device), op);
  CSKV_TRY(impl->gemm.Init(cublasLtPath, kGemmWorkspaceBytes));
  CSKV_TRY(impl->Allocate());
  CSKV_TRY(impl->BuildRope(spec.invFreq.data(), impl->layout.capacityTokens));
  CSKV_CUDA_TRY(cudaDeviceSynchronize(), op);
  engine.reset(new DeviceEngine(std::move(impl)));
  return Status::Ok();
}

const ModelSpec& DeviceEngine::spec() const { return impl_->spec; }
const CacheLayout& DeviceEngine::layout() const { return impl_->layout; }
int64_t DeviceEngine::length() const { return impl_->length; }
int64_t DeviceEngine::compressedTokens() const { return impl_->compressed; }

Status DeviceEngine::LoadTensor(TensorRole role, int layer, const std::string& dtype, const uint8_t* data, size_t bytes) {
  CSKV_TRY(impl_->Usable("loadTensor"));
  return impl_->Fail(impl_->Load(role, layer, dtype, data, bytes));
}

Status DeviceEngine::LoadTensorQ8(TensorRole role, int layer, const int8_t* codes, size_t codeBytes, const float* scales, size_t scaleCount) {
  CSKV_TRY(impl_->Usable("loadTensorQ8"));
  return impl_->Fail(impl_->LoadBlocks(LinearFormat::kQ8, role, layer, codes, codeBytes, scales, scaleCount * sizeof(float)));
}

Status DeviceEngine::LoadTensorQ4(TensorRole role, int layer, const uint8_t* codes, size_t codeBytes, const uint16_t* scaleMin, size_t scaleMinCount) {
  CSKV_TRY(impl_->Usable("loadTensorQ4"));
  return impl_->Fail(impl_->LoadBlocks(LinearFormat::kQ4, role, layer, codes, codeBytes, scaleMin, scaleMinCount * sizeof(uint16_t)));
}

Status DeviceEngine::FinishLoading() {
  CSKV_TRY(impl_->Usable("finishLoading"));
  for (const auto& [role, layer] : RequiredTensors(impl_->spec)) {
    if (std::find(impl_->loaded.begin(), impl_->loaded.end(), std::make_pair(role, layer)) == impl_->loaded.end()) {
      return Status::Error("BAD_ARGUMENT", std::string("finishLoading: tensor ") + TensorRoleName(role) +
                                               (layer >= 0 ? " of layer " + std::to_string(layer) : "") + " was never loaded");
    }
  }
  CSKV_CUDA_TRY(cudaDeviceSynchronize(), "finishLoading");
  return Status::Ok();
}

Status DeviceEngine::Forward(const int32_t* tokens, size_t count, const double* invFreq, int logitRows, float* logitsOut) {
  Impl& e = *impl_;
  CSKV_TRY(e.Usable("forward"));
  if (count == 0 || count > static_cast<size_t>(e.maxChunk)) {
    return Status::Error("BAD_ARGUMENT", "forward: a chunk holds 1.." + std::to_string(e.maxChunk) + " tokens, got " + std::to_string(count));
  }
  if (logitRows < 0 || static_cast<size_t>(logitRows) > count) return Status::Error("BAD_ARGUMENT", "forward: logitRows must be in 0..count");
  if (e.length + static_cast<int64_t>(count) > e.layout.capacityTokens) {
    return Status::Error("OUT_OF_MEMORY", "forward: the cache holds at most " + std::to_string(e.layout.capacityTokens) + " tokens on this GPU; " +
                                              std::to_string(e.length + static_cast<int64_t>(count)) + " were asked for");
  }
  if (e.length + static_cast<int64_t>(count) - e.compressed > e.layout.fullCapacity) {
    return Status::Error("BAD_ARGUMENT", "forward: the chunk crosses a block boundary it may not cross (see nextChunkEnd)");
  }
  for (size_t t = 0; t < count; t++) {
    if (tokens[t] < 0 || tokens[t] >= e.spec.vocab) {
      return Status::Error("BAD_ARGUMENT", "forward: token id " + std::to_string(tokens[t]) + " is outside the vocabulary (0.." + std::to_string(e.spec.vocab - 1) + ")");
    }
  }
  return e.Fail(e.Run(tokens, count, invFreq, logitRows, logitsOut));
}

Status DeviceEngine::Sample(const SampleRequest& request, int32_t& token) {
  Impl& e = *impl_;
  CSKV_TRY(e.Usable("sample"));
  if (e.lastLogitRows < 1) return Status::Error("BAD_ARGUMENT", "sample: the last forward kept no logits");
  SampleParams params;
  params.greedy = request.greedy;
  params.temperature = request.temperature;
  params.topK = request.topK;
  params.topP = request.topP;
  params.u = request.u;
  const float* row = e.logits->as<float>() + static_cast<size_t>(e.lastLogitRows - 1) * e.spec.vocab;
  Status status = LaunchSample(row, e.spec.vocab, params, e.sampled->as<int32_t>(), kStream);
  if (status.ok()) status = CudaStatus(cudaMemcpy(&token, e.sampled->as<int32_t>(), sizeof(int32_t), cudaMemcpyDeviceToHost), "cudaMemcpy", "sample");
  return e.Fail(status);
}

Status DeviceEngine::Truncate(int64_t length, int64_t& recomputeFrom) {
  Impl& e = *impl_;
  CSKV_TRY(e.Usable("truncate"));
  if (length < 0 || length > e.length) {
    return Status::Error("BAD_ARGUMENT", "truncate: cannot truncate a cache of " + std::to_string(e.length) + " tokens to " + std::to_string(length));
  }
  const TruncationPlan plan = PlanTruncation(e.layout, e.compressed, length);
  e.compressed = plan.compressedTokens;
  e.length = recomputeFrom = plan.recomputeFrom;
  return Status::Ok();
}

Status DeviceEngine::Memory(EngineMemory& memory) const {
  const Impl& e = *impl_;
  memory.tokens = e.length;
  memory.compressedTokens = e.compressed;
  memory.perLayer.clear();
  for (int i = 0; i < e.spec.layers; i++) memory.perLayer.push_back(LayerHeldBytes(e.layout, i, e.length, e.compressed));
  memory.cacheReservedBytes = e.cacheBytes;
  memory.weightBytes = e.weightBytes;
  memory.scratchBytes = e.scratchBytes;
  CSKV_CUDA_TRY(cudaSetDevice(e.spec.device), "memory");
  CSKV_CUDA_TRY(cudaMemGetInfo(&memory.deviceFreeBytes, &memory.deviceTotalBytes), "memory");
  return Status::Ok();
}

namespace {

// Copies ring rows of positions [from, to) between a host array of row width `width` and the ring, in order.
Status CopyRing(void* ring, void* host, size_t rowBytes, int ringRows, int64_t from, int64_t to, bool toHost, const char* op) {
  for (int64_t p = from; p < to;) {
    const int64_t slot = p % ringRows;
    const int64_t run = std::min<int64_t>(to - p, ringRows - slot);
    uint8_t* device = static_cast<uint8_t*>(ring) + slot * rowBytes;
    uint8_t* local = static_cast<uint8_t*>(host) + (p - from) * rowBytes;
    CSKV_CUDA_TRY(toHost ? cudaMemcpy(local, device, run * rowBytes, cudaMemcpyDeviceToHost) : cudaMemcpy(device, local, run * rowBytes, cudaMemcpyHostToDevice), op);
    p += run;
  }
  return Status::Ok();
}

}  // namespace

Status DeviceEngine::ExportLayer(int layer, LayerState& state) const {
  const Impl& e = *impl_;
  const char* op = "snapshot";
  CSKV_TRY(e.Usable(op));
  if (layer < 0 || layer >= e.spec.layers) return Status::Error("BAD_ARGUMENT", "snapshot: layer index out of range");
  const LayerLayout& l = e.layout.layers[layer];
  const LayerCache& c = e.cache[layer];
  const size_t D = e.spec.kvDim(), full = static_cast<size_t>(e.length - e.compressed);
  state.kFull.resize(full * D);
  state.vFull.resize(full * D);
  CSKV_TRY(CopyRing(c.kRing->as<void>(), state.kFull.data(), D * 2, e.layout.fullCapacity, e.compressed, e.length, true, op));
  CSKV_TRY(CopyRing(c.vRing->as<void>(), state.vFull.data(), D * 2, e.layout.fullCapacity, e.compressed, e.length, true, op));
  if (e.spec.cache.compressed()) {
    state.kPending.resize(full * l.kRank);
    state.vPending.resize(full * l.vRank);
    CSKV_TRY(CopyRing(c.kFeatures->as<void>(), state.kPending.data(), l.kRank * 4, e.layout.fullCapacity, e.compressed, e.length, true, op));
    CSKV_TRY(CopyRing(c.vFeatures->as<void>(), state.vPending.data(), l.vRank * 4, e.layout.fullCapacity, e.compressed, e.length, true, op));
    state.pages.resize(static_cast<size_t>(e.compressed / e.spec.cache.window) * l.page.bytes);
    if (!state.pages.empty()) CSKV_CUDA_TRY(cudaMemcpy(state.pages.data(), c.pages->as<void>(), state.pages.size(), cudaMemcpyDeviceToHost), op);
  }
  return Status::Ok();
}

Status DeviceEngine::ImportState(int64_t tokens, int64_t compressedTokens, const std::vector<LayerState>& layers) {
  Impl& e = *impl_;
  const char* op = "restore";
  CSKV_TRY(e.Usable(op));
  const int64_t W = e.spec.cache.window;
  const bool cskv = e.spec.cache.compressed();
  auto bad = [](const std::string& what) { return Status::Error("BAD_ARGUMENT", "restore: " + what); };
  if (layers.size() != static_cast<size_t>(e.spec.layers)) return bad("the snapshot has another number of layers");
  if (tokens < 0 || tokens > e.layout.capacityTokens) return bad("the snapshot holds more tokens than this cache");
  if (compressedTokens < 0 || compressedTokens > tokens || (cskv ? compressedTokens != tokens / W * W : compressedTokens != 0)) {
    return bad("the compressed length does not follow the block-window rule");
  }
  const size_t D = e.spec.kvDim(), full = static_cast<size_t>(tokens - compressedTokens);
  for (int i = 0; i < e.spec.layers; i++) {
    const LayerLayout& l = e.layout.layers[i];
    const LayerState& s = layers[i];
    const size_t blocks = static_cast<size_t>(compressedTokens / W);
    if (s.kFull.size() != full * D || s.vFull.size() != full * D || s.kPending.size() != full * l.kRank || s.vPending.size() != full * l.vRank ||
        s.pages.size() != (cskv ? blocks * l.page.bytes : 0)) {
      return bad("layer " + std::to_string(i) + " has the wrong size");
    }
  }
  for (int i = 0; i < e.spec.layers; i++) {
    const LayerLayout& l = e.layout.layers[i];
    LayerCache& c = e.cache[i];
    LayerState& s = const_cast<LayerState&>(layers[i]);
    Status status = CopyRing(c.kRing->as<void>(), s.kFull.data(), D * 2, e.layout.fullCapacity, compressedTokens, tokens, false, op);
    if (status.ok()) status = CopyRing(c.vRing->as<void>(), s.vFull.data(), D * 2, e.layout.fullCapacity, compressedTokens, tokens, false, op);
    if (status.ok() && cskv) {
      status = CopyRing(c.kFeatures->as<void>(), s.kPending.data(), l.kRank * 4, e.layout.fullCapacity, compressedTokens, tokens, false, op);
      if (status.ok()) status = CopyRing(c.vFeatures->as<void>(), s.vPending.data(), l.vRank * 4, e.layout.fullCapacity, compressedTokens, tokens, false, op);
      if (status.ok() && !s.pages.empty()) status = CudaStatus(cudaMemcpy(c.pages->as<void>(), s.pages.data(), s.pages.size(), cudaMemcpyHostToDevice), "cudaMemcpy", op);
    }
    if (!status.ok()) return e.Fail(status);
  }
  e.length = tokens;
  e.compressed = compressedTokens;
  e.lastLogitRows = 0;
  return Status::Ok();
}

}  // namespace cskv
