// The shape of a Llama-family model as the CUDA engine needs it, read from the runtime's ModelConfig
// (src/runtime/model/config.ts) by the JS side and checked here once.
#pragma once

#include <string>
#include <vector>

#include "../status.h"
#include "cacheLayout.h"

namespace cskv {

// How linear layers' weights are held on the device.
enum class LinearFormat { kBf16, kQ8, kQ4 };

struct ModelSpec {
  int hidden = 0;
  int layers = 0;
  int heads = 0;
  int kvHeads = 0;
  int headDim = 0;
  int intermediate = 0;
  int vocab = 0;
  float rmsNormEps = 1e-6f;
  bool qkvBias = false;
  bool outputBias = false;
  bool mlpBias = false;
  bool tiedEmbeddings = false;
  // Linear layers and an untied output head in bf16, 8-bit blocks (kernels/q8Layout.h) or 4-bit blocks
  // (kernels/q4Layout.h). The embedding (a lookup, and the output head when tied) is q8 blocks with q8, else bf16.
  LinearFormat weights = LinearFormat::kBf16;
  int slidingWindow = 0;  // 0: full attention
  // Decode steps (at most kFusedDecodeMaxQueries tokens) attend with the fused kernel (kernels/fusedAttention.cuh)
  // instead of rebuilding the compressed branch into scratch for cuBLASLt + the split attention. Off by default
  // until the GPU session has checked it (CSKV_CUDA_DECODE_ATTENTION=fused in src/runtime/backends/cudaEngine.ts).
  bool fusedDecodeAttention = false;
  // Prefill chunks (more than kFusedDecodeMaxQueries tokens) attend with the fused prefill kernel
  // (kernels/fusedPrefillAttention.cuh), the same way; off by default until the GPU session has checked it
  // (CSKV_CUDA_PREFILL_ATTENTION=fused).
  bool fusedPrefillAttention = false;
  bool fusedAttention() const { return fusedDecodeAttention || fusedPrefillAttention; }  // the transposed bases are kept
  // RoPE: the runtime computes the frequencies of every scaling type (src/runtime/model/rope.ts) and passes them;
  // for dynamic NTK they change with the length and come with each forward.
  std::vector<double> invFreq;  // headDim / 2
  double attentionFactor = 1.0;
  CacheSpec cache;
  int device = 0;

  int qDim() const { return heads * headDim; }
  int kvDim() const { return kvHeads * headDim; }
};

// Names the first field that is out of range. The attention kernel keeps one head in registers: headDim <= 256.
Status ValidateModelSpec(const ModelSpec& spec);

// The tensors the engine takes (JS passes each checkpoint tensor under one of these roles). Per-layer roles take
// a layer index; the CSKV roles exist only with factors.
enum class TensorRole {
  kEmbedding, kLmHead, kFinalNorm,
  kInputNorm, kPostNorm, kQ, kK, kV, kO, kQBias, kKBias, kVBias, kOBias, kGate, kUp, kDown, kGateBias, kUpBias, kDownBias,
  kKBasis, kKMean, kVBasis, kVMean,
};

bool ParseTensorRole(const std::string& name, TensorRole& role);
const char* TensorRoleName(TensorRole role);
bool IsLayerRole(TensorRole role);
// The elements the role's tensor must have; 0 when the model has no such tensor (a bias it does not use, ...).
size_t TensorRoleElements(const ModelSpec& spec, TensorRole role, int layer);
// Every (role, layer) the model needs before it can run, for the check after loading.
std::vector<std::pair<TensorRole, int>> RequiredTensors(const ModelSpec& spec);

}  // namespace cskv
