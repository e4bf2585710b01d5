#include "modelSpec.h"

#include <cmath>
#include <cstring>

namespace cskv {
namespace {

struct RoleName {
  TensorRole role;
  const char* name;
  bool perLayer;
};

constexpr RoleName kRoles[] = {
    {TensorRole::kEmbedding, "embedding", false}, {TensorRole::kLmHead, "lmHead", false}, {TensorRole::kFinalNorm, "finalNorm", false},
    {TensorRole::kInputNorm, "inputNorm", true},  {TensorRole::kPostNorm, "postNorm", true}, {TensorRole::kQ, "q", true},
    {TensorRole::kK, "k", true},                  {TensorRole::kV, "v", true},               {TensorRole::kO, "o", true},
    {TensorRole::kQBias, "qBias", true},          {TensorRole::kKBias, "kBias", true},       {TensorRole::kVBias, "vBias", true},
    {TensorRole::kOBias, "oBias", true},          {TensorRole::kGate, "gate", true},         {TensorRole::kUp, "up", true},
    {TensorRole::kDown, "down", true},            {TensorRole::kGateBias, "gateBias", true}, {TensorRole::kUpBias, "upBias", true},
    {TensorRole::kDownBias, "downBias", true},    {TensorRole::kKBasis, "kBasis", true},     {TensorRole::kKMean, "kMean", true},
    {TensorRole::kVBasis, "vBasis", true},        {TensorRole::kVMean, "vMean", true},
};

Status Bad(const std::string& what) { return Status::Error("BAD_ARGUMENT", "model spec: " + what); }

}  // namespace

Status ValidateModelSpec(const ModelSpec& s) {
  if (s.hidden < 1) return Bad("hidden must be at least 1");
  if (s.layers < 1) return Bad("layers must be at least 1");
  if (s.heads < 1 || s.kvHeads < 1 || s.heads % s.kvHeads != 0) return Bad("heads must be a positive multiple of kvHeads");
  if (s.headDim < 2 || s.headDim % 2 != 0 || s.headDim > 256) return Bad("headDim must be even and in 2..256");
  if (s.intermediate < 1) return Bad("intermediate must be at least 1");
  if (s.vocab < 1) return Bad("vocab must be at least 1");
  if (!(s.rmsNormEps > 0) || !std::isfinite(s.rmsNormEps)) return Bad("rmsNormEps must be positive");
  if (s.slidingWindow < 0) return Bad("slidingWindow must be 0 (none) or positive");
  if (s.invFreq.size() != static_cast<size_t>(s.headDim / 2)) return Bad("invFreq must have headDim / 2 entries");
  for (double f : s.invFreq) {
    if (!std::isfinite(f) || f < 0) return Bad("invFreq entries must be finite and non-negative");
  }
  if (!std::isfinite(s.attentionFactor) || s.attentionFactor <= 0) return Bad("attentionFactor must be positive");
  if (s.cache.layers != s.layers || s.cache.kvDim != s.kvDim()) return Bad("the cache's layers and kvDim must be the model's");
  if (s.device < 0) return Bad("device must be a non-negative index");
  return Status::Ok();
}

bool ParseTensorRole(const std::string& name, TensorRole& role) {
  for (const RoleName& r : kRoles) {
    if (name == r.name) {
      role = r.role;
      return true;
    }
  }
  return false;
}

const char* TensorRoleName(TensorRole role) {
  for (const RoleName& r : kRoles) {
    if (r.role == role) return r.name;
  }
  return "?";
}

bool IsLayerRole(TensorRole role) {
  for (const RoleName& r : kRoles) {
    if (r.role == role) return r.perLayer;
  }
  return false;
}

size_t TensorRoleElements(const ModelSpec& s, TensorRole role, int layer) {
  const size_t H = s.hidden, Q = s.qDim(), D = s.kvDim(), I = s.intermediate, V = s.vocab;
  const bool cskv = s.cache.compressed();
  const size_t rk = cskv && layer >= 0 && layer < s.layers ? s.cache.kRanks[layer] : 0;
  const size_t rv = cskv && layer >= 0 && layer < s.layers ? s.cache.vRanks[layer] : 0;
  switch (role) {
    case TensorRole::kEmbedding: return V * H;
    case TensorRole::kLmHead: return s.tiedEmbeddings ? 0 : V * H;
    case TensorRole::kFinalNorm: return H;
    case TensorRole::kInputNorm: case TensorRole::kPostNorm: return H;
    case TensorRole::kQ: return Q * H;
    case TensorRole::kK: case TensorRole::kV: return D * H;
    case TensorRole::kO: return H * Q;
    case TensorRole::kQBias: return s.qkvBias ? Q : 0;
    case TensorRole::kKBias: case TensorRole::kVBias: return s.qkvBias ? D : 0;
    case TensorRole::kOBias: return s.outputBias ? H : 0;
    case TensorRole::kGate: case TensorRole::kUp: return I * H;
    case TensorRole::kDown: return H * I;
    case TensorRole::kGateBias: case TensorRole::kUpBias: return s.mlpBias ? I : 0;
    case TensorRole::kDownBias: return s.mlpBias ? H : 0;
    case TensorRole::kKBasis: return D * rk;
    case TensorRole::kVBasis: return D * rv;
    case TensorRole::kKMean: case TensorRole::kVMean: return cskv ? D : 0;
  }
  return 0;
}

std::vector<std::pair<TensorRole, int>> RequiredTensors(const ModelSpec& s) {
  std::vector<std::pair<TensorRole, int>> out;
  for (const RoleName& r : kRoles) {
    if (!r.perLayer) {
      if (TensorRoleElements(s, r.role, -1) > 0) out.emplace_back(r.role, -1);
      continue;
    }
    for (int i = 0; i < s.layers; i++) {
      if (TensorRoleElements(s, r.role, i) > 0) out.emplace_back(r.role, i);
    }
  }
  return out;
}

}  // namespace cskv
