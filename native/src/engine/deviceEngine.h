// The CUDA engine: a Llama-family model's weights in bf16 device memory, its bi-branch cache in preallocated
// device pages (cacheLayout.h), and one forward pass that runs every layer on the GPU. Host code only: it calls
// the launchers of ../kernels/ and cuBLASLt (gemm.h). Every failure is a Status naming the step; after a device
// fault the engine refuses further work (the CUDA context may be corrupt) and says why.
// In a CPU-only build every entry point returns BACKEND (deviceEngineUnavailable.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../status.h"
#include "cacheLayout.h"
#include "modelSpec.h"

namespace cskv {

struct SampleRequest {
  bool greedy = true;
  float temperature = 1.f;
  int topK = 0;
  float topP = 1.f;
  double u = 0.0;
};

struct EngineMemory {
  int64_t tokens = 0;
  int64_t compressedTokens = 0;
  std::vector<HeldBytes> perLayer;
  size_t cacheReservedBytes = 0;
  size_t weightBytes = 0;
  size_t scratchBytes = 0;
  size_t deviceTotalBytes = 0;
  size_t deviceFreeBytes = 0;
};

// One layer's cache as host arrays (a snapshot): positions [compressedTokens, tokens) in order, and the pages of
// blocks [0, compressedTokens / W).
struct LayerState {
  std::vector<uint16_t> kFull, vFull;       // bf16 [fullTokens, kvDim]
  std::vector<float> kPending, vPending;    // f32 [fullTokens, rank] (CSKV only)
  std::vector<uint8_t> pages;               // [blocks, pageBytes]
};

class DeviceEngine {
 public:
  // Allocates everything (weights, cache, scratch) up front: OUT_OF_MEMORY names the size that did not fit.
  static Status Create(const ModelSpec& spec, const std::string& cublasLtPath, std::unique_ptr<DeviceEngine>& engine);
  ~DeviceEngine();

  const ModelSpec& spec() const;
  const CacheLayout& layout() const;
  int64_t length() const;
  int64_t compressedTokens() const;

  // One checkpoint tensor ("F32", "F16" or "BF16" bytes), converted on the device.
  Status LoadTensor(TensorRole role, int layer, const std::string& dtype, const uint8_t* data, size_t bytes);
  // A linear layer's weight as 8-bit blocks (spec.weights q8; kernels/q8Layout.h): int8 codes [rows, ceil(k/32)*32]
  // and f32 scales [rows, ceil(k/32)].
  Status LoadTensorQ8(TensorRole role, int layer, const int8_t* codes, size_t codeBytes, const float* scales, size_t scaleCount);
  // A linear layer's weight as 4-bit blocks (kernels/q4Layout.h): codes [rows, ceil(k/32)*16] and f16 (scale, min)
  // pairs [rows, ceil(k/32), 2].
  Status LoadTensorQ4(TensorRole role, int layer, const uint8_t* codes, size_t codeBytes, const uint16_t* scaleMin, size_t scaleMinCount);
  // BAD_ARGUMENT naming the first tensor that was never loaded.
  Status FinishLoading();

  // Appends `count` tokens. invFreq (headDim / 2, or null) replaces the frequencies first (dynamic NTK).
  // logitsOut (null: keep them on the device for Sample) receives the last `logitRows` rows [logitRows, vocab].
  Status Forward(const int32_t* tokens, size_t count, const double* invFreq, int logitRows, float* logitsOut);
  // Samples from the last logit row of the last Forward.
  Status Sample(const SampleRequest& request, int32_t& token);
  // BiBranchCache.truncate's rule: inside the compressed branch only whole blocks survive.
  Status Truncate(int64_t length, int64_t& recomputeFrom);
  Status Memory(EngineMemory& memory) const;
  Status ExportLayer(int layer, LayerState& state) const;
  Status ImportState(int64_t tokens, int64_t compressedTokens, const std::vector<LayerState>& layers);

  struct Impl;

 private:
  explicit DeviceEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cskv
