#include "fusedAttention.cuh"

#include <algorithm>
#include <cmath>
#include <string>

#include "../cudaCheck.h"
#include "../engine/cacheLayout.h"
#include "elementAccess.cuh"
#include "fusedCacheReads.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

constexpr int kThreads = 128;  // 4 warps
constexpr int kWarps = kThreads / 32;
constexpr int kTile = kFusedAttentionKeyTile;
constexpr int kMaxHeadDim = 256;

// The block's shared memory, in floats, carved in this order.
struct SharedPlan {
  int group, kRank, vRank, maxRank;
  __host__ __device__ size_t Floats(int hd) const {
    return static_cast<size_t>(group) * hd       // queries, rotated and scaled
           + static_cast<size_t>(kTile) * hd     // the tile's rotated keys, then its ring values
           + static_cast<size_t>(kTile) * maxRank  // the tile's key features, then its value features
           + static_cast<size_t>(group) * kTile  // scores, then weights
           + static_cast<size_t>(group) * hd     // weighted sum of ring values
           + static_cast<size_t>(group) * vRank  // weighted sum of compressed value features
           + 4 * static_cast<size_t>(group);     // running max, running sum, compressed weights' sum, correction
  }
};

__host__ __device__ inline SharedPlan PlanShared(const FusedAttentionArgs& a) {
  SharedPlan s;
  s.group = a.heads / a.kvHeads;
  s.kRank = a.compressedTokens > 0 ? a.kFeatures.rank : 0;
  s.vRank = a.compressedTokens > 0 ? a.vFeatures.rank : 0;
  s.maxRank = s.kRank > s.vRank ? s.kRank : s.vRank;
  return s;
}

// The tiled key rebuild: thread t owns rotary pair c = t % half of keys [first, first + kTile * half / kThreads) of
// the tile (half divides kThreads, is at most kTiledMaxHalf and at least kThreads / kTile, so a run is 1 to
// kTiledMaxKeys keys). Each
// basis value is loaded once per run and the features are shared-memory broadcasts across the pair's lanes.
constexpr int kTiledMaxHalf = 64;
constexpr int kTiledMaxKeys = kTile * kTiledMaxHalf / kThreads;

__device__ __forceinline__ void RebuildKeyPairs(const FusedAttentionArgs& a, const float* feats, int kRank, int compressedCount, int half, size_t base,
                                                size_t kvDim, int64_t tile, const float2* table, float* kv) {
  const int c = threadIdx.x % half;
  const int keys = kTile * half / kThreads;
  const int first = (threadIdx.x / half) * keys;
  float acc0[kTiledMaxKeys], acc1[kTiledMaxKeys];
  const float m0 = a.kMean[base + c], m1 = a.kMean[base + c + half];
#pragma unroll
  for (int k = 0; k < kTiledMaxKeys; k++) {
    acc0[k] = m0;
    acc1[k] = m1;
  }
  const float* u = a.kBasisT + base + c;
  for (int r = 0; r < kRank; r++) {
    const float u0 = __ldg(u + r * kvDim), u1 = __ldg(u + r * kvDim + half);
#pragma unroll
    for (int k = 0; k < kTiledMaxKeys; k++) {
      if (k < keys) {
        const float f = feats[(first + k) * kRank + r];  // rows past compressedCount hold stale values, never stored
        acc0[k] = fmaf(f, u0, acc0[k]);
        acc1[k] = fmaf(f, u1, acc1[k]);
      }
    }
  }
  const int hd = 2 * half;
#pragma unroll
  for (int k = 0; k < kTiledMaxKeys; k++) {
    const int j = first + k;
    if (k < keys && j < compressedCount) {
      const float2 key = Rotate(acc0[k], acc1[k], table[static_cast<size_t>(tile + j) * half + c]);
      kv[j * hd + c] = key.x;
      kv[j * hd + c + half] = key.y;
    }
  }
}

// Grid (splits, kvHeads, queries). Four blocks per multiprocessor: without the bound ptxas held it to 64 registers
// and spilled; with it, 117 and no spills (sm_90).
__global__ void __launch_bounds__(kThreads, 4) FusedAttentionPartialsKernel(FusedAttentionArgs a) {
  extern __shared__ float shared[];
  const int split = blockIdx.x, g = blockIdx.y, query = blockIdx.z;
  const int hd = a.headDim, half = hd / 2;
  const SharedPlan plan = PlanShared(a);
  const int G = plan.group, kRank = plan.kRank, vRank = plan.vRank;
  const size_t kvDim = static_cast<size_t>(a.kvHeads) * hd;
  const size_t base = static_cast<size_t>(g) * hd;
  const int64_t n = a.start + query;
  int64_t lo = static_cast<int64_t>(split) * a.keysPerSplit;
  int64_t hi = lo + a.keysPerSplit;
  if (hi > n + 1) hi = n + 1;
  if (a.slidingWindow > 0 && lo < n - a.slidingWindow + 1) lo = n - a.slidingWindow + 1;

  float* qs = shared;
  float* kv = qs + G * hd;
  float* feats = kv + kTile * hd;
  float* weights = feats + kTile * plan.maxRank;
  float* vacc = weights + G * kTile;
  float* facc = vacc + G * hd;
  float* runMax = facc + G * vRank;
  float* runSum = runMax + G;
  float* compSum = runSum + G;
  float* correction = compSum + G;
  const float2* table = reinterpret_cast<const float2*>(a.ropeTable);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  // The group's queries, rotated at their position and scaled.
  for (int i = tid; i < G * half; i += kThreads) {
    const int h = i / half, c = i % half;
    const float* row = a.q + static_cast<size_t>(query) * a.qStride + static_cast<size_t>(g * G + h) * hd;
    const float2 y = Rotate(row[c], row[c + half], table[static_cast<size_t>(n) * half + c]);
    qs[h * hd + c] = y.x * a.scale;
    qs[h * hd + c + half] = y.y * a.scale;
  }
  for (int i = tid; i < G * hd; i += kThreads) vacc[i] = 0.f;
  for (int i = tid; i < G * vRank; i += kThreads) facc[i] = 0.f;
  if (tid < G) {
    runMax[tid] = -INFINITY;
    runSum[tid] = 0.f;
    compSum[tid] = 0.f;
  }
  __syncthreads();

  for (int64_t tile = lo; tile < hi; tile += kTile) {
    const int count = static_cast<int>(hi - tile < kTile ? hi - tile : kTile);
    const int compressedCount = CompressedCount(a.compressedTokens, tile, count);
    LoadTileFeatures<kThreads>(a.kFeatures, kRank, tile, compressedCount, feats);
    __syncthreads();

    // Keys: rebuilt (mean + U f) or read from the ring, then rotated. When the rotary pairs divide the block, a
    // thread rebuilds one pair for a run of keys, so each basis value it loads serves the whole run; otherwise (and
    // for ring keys) a thread takes one pair of one key.
    const bool tiled = compressedCount > 0 && half <= kTiledMaxHalf && kThreads % half == 0 && half * kTile >= kThreads;
    if (tiled) RebuildKeyPairs(a, feats, kRank, compressedCount, half, base, kvDim, tile, table, kv);
    StoreTileKeys<kThreads>(a, feats, kRank, tile, count, compressedCount, tiled, base, kv);
    __syncthreads();

    // Scores: a warp per (query head, key), lanes over the channels.
    for (int item = warp; item < G * kTile; item += kWarps) {
      const int h = item / kTile, j = item % kTile;
      float dot = 0.f;
      if (j < count) {
        for (int c = lane; c < hd; c += 32) dot = fmaf(qs[h * hd + c], kv[j * hd + c], dot);
        for (int offset = 16; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
      }
      if (lane == 0) weights[item] = j < count ? dot : -INFINITY;
    }
    __syncthreads();

    // The new running max per query head; the tile's ring values and compressed value features replace its keys.
    if (tid < G) {
      float m = runMax[tid];
      for (int j = 0; j < count; j++) m = fmaxf(m, weights[tid * kTile + j]);
      correction[tid] = expf(runMax[tid] - m);  // exp(-inf) = 0 on the first tile
      runMax[tid] = m;
    }
    LoadTileRingValues<kThreads>(a, tile, count, compressedCount, base, kv);
    LoadTileFeatures<kThreads>(a.vFeatures, vRank, tile, compressedCount, feats);
    __syncthreads();
    for (int i = tid; i < G * kTile; i += kThreads) {
      const int h = i / kTile, j = i % kTile;
      weights[i] = j < count ? expf(weights[i] - runMax[h]) : 0.f;
    }
    __syncthreads();

    if (tid < G) {
      float total = 0.f, compressedTotal = 0.f;
      for (int j = 0; j < count; j++) {
        total += weights[tid * kTile + j];
        if (j < compressedCount) compressedTotal += weights[tid * kTile + j];
      }
      runSum[tid] = runSum[tid] * correction[tid] + total;
      compSum[tid] = compSum[tid] * correction[tid] + compressedTotal;
    }
    for (int i = tid; i < G * hd; i += kThreads) {
      const int h = i / hd, c = i % hd;
      float sum = vacc[i] * correction[h];
      for (int j = compressedCount; j < count; j++) sum = fmaf(weights[h * kTile + j], kv[j * hd + c], sum);
      vacc[i] = sum;
    }
    for (int i = tid; i < G * vRank; i += kThreads) {
      const int h = i / vRank, r = i % vRank;
      float sum = facc[i] * correction[h];
      for (int j = 0; j < compressedCount; j++) sum = fmaf(weights[h * kTile + j], feats[j * vRank + r], sum);
      facc[i] = sum;
    }
    __syncthreads();
  }

  // The split's weighted sum: ring values + V (sum w f) + mean * (sum w) of the compressed ones.
  const bool anyCompressed = lo < hi && lo < a.compressedTokens;
  for (int i = tid; i < G * hd; i += kThreads) {
    const int h = i / hd, c = i % hd;
    const float value = anyCompressed ? AddCompressedValues(a, vacc[i], compSum[h], facc + h * vRank, vRank, base, c) : vacc[i];
    float* out = a.partials + ((static_cast<size_t>(query) * a.heads + g * G + h) * a.splits + split) * (hd + 2);
    out[c] = value;
  }
  if (tid < G) {
    float* out = a.partials + ((static_cast<size_t>(query) * a.heads + g * G + tid) * a.splits + split) * (hd + 2);
    out[hd] = runMax[tid];  // -inf when this split held no visible key
    out[hd + 1] = runSum[tid];
  }
}

__global__ void TransposeF32Kernel(const float* in, size_t rows, size_t cols, float* out) {
  const size_t total = rows * cols;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = i / cols, c = i % cols;
    out[c * rows + r] = in[i];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

namespace {

Status Check(const FusedAttentionArgs& a) {
  CSKV_TRY(CheckFusedAttentionSources(a, "fusedAttention"));
  const char* problem = nullptr;
  if (a.heads / a.kvHeads > kThreads) problem = "at most 128 query heads per kv head";
  else if (a.splits < 1 || a.keysPerSplit < 1 || a.keysPerSplit % kTile != 0) problem = "splits and keysPerSplit must be positive, keysPerSplit whole tiles";
  else if (static_cast<int64_t>(a.splits) * a.keysPerSplit < a.start + a.queries) problem = "the splits do not cover every key";
  if (problem != nullptr) return Status::Error("BAD_ARGUMENT", std::string("fusedAttention: ") + problem);
  return Status::Ok();
}

constexpr size_t kDefaultSharedBytes = 48u << 10;

}  // namespace

Status CheckFusedAttentionSources(const FusedAttentionSources& a, const char* kernel) {
  const char* problem = nullptr;
  const bool compressed = a.compressedTokens > 0;
  if (a.queries < 1 || a.heads < 1 || a.kvHeads < 1 || a.heads % a.kvHeads != 0) problem = "queries, heads and kvHeads must be positive, heads a multiple of kvHeads";
  else if (a.headDim < 2 || a.headDim % 2 != 0 || a.headDim > kMaxHeadDim) problem = "headDim must be even and at most 256";
  else if (a.ringRows < 1 || a.start + a.queries - a.compressedTokens > a.ringRows) problem = "the full-precision keys do not fit the ring";
  else if (a.q == nullptr || a.kRing == nullptr || a.vRing == nullptr || a.ropeTable == nullptr) problem = "a buffer is missing";
  else if (compressed && (a.kFeatures.pages == nullptr || a.vFeatures.pages == nullptr || a.kBasisT == nullptr || a.vBasisT == nullptr ||
                          a.kMean == nullptr || a.vMean == nullptr)) {
    problem = "compressed keys without pages, bases or means";
  } else if (compressed && (a.kFeatures.rank < 1 || a.vFeatures.rank < 1 || a.kFeatures.window < 1 || a.kFeatures.window != a.vFeatures.window ||
                            a.compressedTokens % a.kFeatures.window != 0 || !a.kFeatures.keys || a.vFeatures.keys)) {
    problem = "the compressed branch must be whole blocks with positive ranks (key then value features)";
  } else if (compressed && ((a.kFeatures.bits != 16 && a.kFeatures.bits != 8 && a.kFeatures.bits != 4 && a.kFeatures.bits != 2) ||
                            a.kFeatures.bits != a.vFeatures.bits)) {
    problem = "bits must be 16, 8, 4 or 2";
  }
  if (problem != nullptr) return Status::Error("BAD_ARGUMENT", std::string(kernel) + ": " + problem);
  return Status::Ok();
}

Status AllowSharedBytes(const void* kernel, size_t bytes, const char* op, const FusedAttentionSources& a) {
  if (bytes <= kDefaultSharedBytes) return Status::Ok();
  int device = 0, limit = 0;
  CSKV_CUDA_TRY(cudaGetDevice(&device), op);
  CSKV_CUDA_TRY(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), op);
  if (bytes > static_cast<size_t>(limit)) {
    return Status::Error("BAD_ARGUMENT", std::string(op) + ": a block needs " + std::to_string(bytes) + " bytes of shared memory (ranks " +
                                             std::to_string(a.kFeatures.rank) + "/" + std::to_string(a.vFeatures.rank) + "), this GPU gives " +
                                             std::to_string(limit));
  }
  CSKV_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), op);
  return Status::Ok();
}

size_t FusedAttentionSharedBytes(const FusedAttentionArgs& a) { return PlanShared(a).Floats(a.headDim) * sizeof(float); }

Status LaunchFusedAttentionPartials(const FusedAttentionArgs& a, cudaStream_t stream) {
  const char* op = "fusedAttention";
  if (a.partials == nullptr) return Status::Error("BAD_ARGUMENT", "fusedAttention: a buffer is missing");
  CSKV_TRY(Check(a));
  const size_t bytes = FusedAttentionSharedBytes(a);
  CSKV_TRY(AllowSharedBytes(reinterpret_cast<const void*>(FusedAttentionPartialsKernel), bytes, op, a));
  const dim3 grid(static_cast<unsigned>(a.splits), static_cast<unsigned>(a.kvHeads), static_cast<unsigned>(a.queries));
  FusedAttentionPartialsKernel<<<grid, kThreads, bytes, stream>>>(a);
  CSKV_CUDA_TRY(cudaGetLastError(), "fusedAttention (partials) kernel launch");
  return Status::Ok();
}

Status LaunchTransposeF32(const float* in, size_t rows, size_t cols, float* out, cudaStream_t stream) {
  if (rows * cols == 0) return Status::Ok();
  constexpr int threads = 256;
  TransposeF32Kernel<<<GridFor(rows * cols, threads), threads, 0, stream>>>(in, rows, cols, out);
  CSKV_CUDA_TRY(cudaGetLastError(), "transposeF32 kernel launch");
  return Status::Ok();
}

}  // namespace cskv
