#include "fusedPrefillAttention.cuh"

#include <cuda_bf16.h>

#include <cmath>
#include <string>

#include "../cudaCheck.h"
#include "../engine/cacheLayout.h"
#include "fusedCacheReads.cuh"

namespace cskv {
namespace {

constexpr int kThreads = 256;  // 8 warps
constexpr int kRows = kFusedPrefillRowTile;
constexpr int kKeys = kFusedAttentionKeyTile;
// For the scores a thread takes one row and every kKeyGroups-th key of the tile: the warp's lanes are 32 rows
// reading one key (a shared-memory broadcast) and rows padded by one float (no bank conflicts).
constexpr int kKeyGroups = kThreads / kRows;
constexpr int kKeysPerThread = kKeys / kKeyGroups;
static_assert(kThreads % kRows == 0 && kKeys % kKeyGroups == 0 && kRows % 32 == 0, "a warp's lanes are 32 rows of one key group");

// The block's shared memory, offsets in floats. Rows of queries, scores and accumulators are padded by one float.
struct SharedPlan {
  size_t kv, feats, scores, vacc, facc, stats, floats;
};

__host__ __device__ inline int Rank(const PageFeatures& f, int64_t compressedTokens) { return compressedTokens > 0 ? f.rank : 0; }

__host__ __device__ inline SharedPlan PlanShared(const FusedPrefillAttentionArgs& a) {
  const size_t hd = a.headDim, kRank = Rank(a.kFeatures, a.compressedTokens), vRank = Rank(a.vFeatures, a.compressedTokens);
  SharedPlan s;
  s.kv = kRows * (hd + 1);                                 // after the rows' queries, rotated and scaled
  s.feats = s.kv + kKeys * hd;                             // the tile's rotated keys, then its ring values
  s.scores = s.feats + kKeys * (kRank > vRank ? kRank : vRank);  // the tile's key features, then its value features
  s.vacc = s.scores + kRows * (kKeys + 1);                 // scores, then weights
  s.facc = s.vacc + kRows * (hd + 1);                      // weighted sum of ring values
  s.stats = s.facc + kRows * (vRank + 1);                  // weighted sum of compressed value features
  s.floats = s.stats + 4 * kRows;                          // running max, running sum, compressed weights' sum, correction
  return s;
}

// Grid (row tiles, kvHeads). Two blocks per multiprocessor where shared memory allows (CSKV off, small ranks):
// without the bound ptxas held it to 64 registers and spilled 24 bytes; with it, 127 and no spills (sm_90).
__global__ void __launch_bounds__(kThreads, 2) FusedPrefillAttentionKernel(FusedPrefillAttentionArgs a) {
  extern __shared__ float shared[];
  const SharedPlan plan = PlanShared(a);
  const int hd = a.headDim, half = hd / 2, rowStride = hd + 1;
  const int G = a.heads / a.kvHeads, g = blockIdx.y;
  const int kRank = Rank(a.kFeatures, a.compressedTokens), vRank = Rank(a.vFeatures, a.compressedTokens), featStride = vRank + 1;
  const size_t base = static_cast<size_t>(g) * hd;
  const int64_t firstRow = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t rowsLeft = static_cast<int64_t>(a.queries) * G - firstRow;
  const int rowCount = rowsLeft < kRows ? static_cast<int>(rowsLeft) : kRows;
  // The keys the block reads: from the first its first row sees to its last row's own position.
  const int64_t firstPosition = a.start + firstRow / G, lastPosition = a.start + (firstRow + rowCount - 1) / G;
  const int64_t lo = a.slidingWindow > 0 && firstPosition - a.slidingWindow + 1 > 0 ? firstPosition - a.slidingWindow + 1 : 0;
  const int64_t hi = lastPosition + 1;

  float* qs = shared;
  float* kv = shared + plan.kv;
  float* feats = shared + plan.feats;
  float* scores = shared + plan.scores;
  float* vacc = shared + plan.vacc;
  float* facc = shared + plan.facc;
  float* runMax = shared + plan.stats;
  float* runSum = runMax + kRows;
  float* compSum = runSum + kRows;
  float* correction = compSum + kRows;
  const float2* table = reinterpret_cast<const float2*>(a.ropeTable);
  const int tid = threadIdx.x;

  // The rows' queries, rotated at their position and scaled; rows past the end are zero.
  for (int i = tid; i < kRows * half; i += kThreads) {
    const int r = i / half, c = i % half;
    float y0 = 0.f, y1 = 0.f;
    if (r < rowCount) {
      const int64_t row = firstRow + r, t = row / G;
      const float* x = a.q + static_cast<size_t>(t) * a.qStride + static_cast<size_t>(g * G + row % G) * hd;
      const float2 y = Rotate(x[c], x[c + half], table[static_cast<size_t>(a.start + t) * half + c]);
      y0 = y.x * a.scale;
      y1 = y.y * a.scale;
    }
    qs[r * rowStride + c] = y0;
    qs[r * rowStride + c + half] = y1;
  }
  for (int i = tid; i < kRows * rowStride; i += kThreads) vacc[i] = 0.f;
  for (int i = tid; i < kRows * featStride; i += kThreads) facc[i] = 0.f;
  if (tid < kRows) {
    runMax[tid] = -INFINITY;
    runSum[tid] = 0.f;
    compSum[tid] = 0.f;
  }

  // This thread's row for the scores, and the keys that row sees.
  const int myRow = tid % kRows, keyGroup = tid / kRows;
  const bool rowValid = myRow < rowCount;
  const int64_t myPosition = a.start + (firstRow + myRow) / G;
  const int64_t myFirst = a.slidingWindow > 0 ? myPosition - a.slidingWindow + 1 : 0;
  __syncthreads();

  for (int64_t tile = lo; tile < hi; tile += kKeys) {
    const int count = static_cast<int>(hi - tile < kKeys ? hi - tile : kKeys);
    const int compressedCount = CompressedCount(a.compressedTokens, tile, count);
    LoadTileFeatures<kThreads>(a.kFeatures, kRank, tile, compressedCount, feats);
    __syncthreads();

    // Keys: rebuilt (mean + U f) or read from the ring, then rotated; a thread per rotary pair of a key.
    StoreTileKeys<kThreads>(a, feats, kRank, tile, count, compressedCount, false, base, kv);
    __syncthreads();

    // Scores, masked: causal (a row sees keys up to its position) and the sliding window.
    {
      float acc[kKeysPerThread];
#pragma unroll
      for (int k = 0; k < kKeysPerThread; k++) acc[k] = 0.f;
      const float* q = qs + myRow * rowStride;
      for (int c = 0; c < hd; c++) {
        const float x = q[c];
#pragma unroll
        for (int k = 0; k < kKeysPerThread; k++) acc[k] = fmaf(x, kv[(keyGroup + k * kKeyGroups) * hd + c], acc[k]);
      }
#pragma unroll
      for (int k = 0; k < kKeysPerThread; k++) {
        const int j = keyGroup + k * kKeyGroups;
        const int64_t p = tile + j;
        const bool visible = rowValid && j < count && p <= myPosition && p >= myFirst;
        scores[myRow * (kKeys + 1) + j] = visible ? acc[k] : -INFINITY;  // rows of kv past count are stale, never used
      }
    }
    __syncthreads();

    // Online softmax per row; meanwhile the tile's ring values and compressed value features replace its keys.
    if (tid < kRows) {
      float* s = scores + tid * (kKeys + 1);
      const float previous = runMax[tid];
      float m = previous;
      for (int j = 0; j < kKeys; j++) m = fmaxf(m, s[j]);
      float total = 0.f, compressedTotal = 0.f, scaleBy = 1.f;
      if (m == -INFINITY) {
        for (int j = 0; j < kKeys; j++) s[j] = 0.f;  // nothing visible to this row yet
      } else {
        scaleBy = expf(previous - m);  // exp(-inf) = 0 before the row's first visible key
        for (int j = 0; j < kKeys; j++) {
          const float w = expf(s[j] - m);
          s[j] = w;
          total += w;
          if (j < compressedCount) compressedTotal += w;
        }
      }
      runMax[tid] = m;
      runSum[tid] = runSum[tid] * scaleBy + total;
      compSum[tid] = compSum[tid] * scaleBy + compressedTotal;
      correction[tid] = scaleBy;
    }
    LoadTileRingValues<kThreads>(a, tile, count, compressedCount, base, kv);
    LoadTileFeatures<kThreads>(a.vFeatures, vRank, tile, compressedCount, feats);
    __syncthreads();

    // Accumulate: a warp's lanes are 32 rows of one channel (or feature).
    for (int i = tid; i < kRows * hd; i += kThreads) {
      const int r = i % kRows, c = i / kRows;
      const float* w = scores + r * (kKeys + 1);
      float sum = vacc[r * rowStride + c] * correction[r];
      for (int j = compressedCount; j < count; j++) sum = fmaf(w[j], kv[j * hd + c], sum);
      vacc[r * rowStride + c] = sum;
    }
    for (int i = tid; i < kRows * vRank; i += kThreads) {
      const int r = i % kRows, f = i / kRows;
      const float* w = scores + r * (kKeys + 1);
      float sum = facc[r * featStride + f] * correction[r];
      for (int j = 0; j < compressedCount; j++) sum = fmaf(w[j], feats[j * vRank + f], sum);
      facc[r * featStride + f] = sum;
    }
    __syncthreads();
  }

  // Each row: (ring values' weighted sum + V (sum w f) + mean * (sum w)) / sum of weights, to bf16.
  const bool anyCompressed = lo < a.compressedTokens;
  for (int i = tid; i < rowCount * hd; i += kThreads) {
    const int r = i / hd, c = i % hd;
    const float ringSum = vacc[r * rowStride + c];
    const float value = anyCompressed ? AddCompressedValues(a, ringSum, compSum[r], facc + r * featStride, vRank, base, c) : ringSum;
    const int64_t row = firstRow + r;
    const size_t column = static_cast<size_t>(g * G + row % G) * hd + c;
    reinterpret_cast<__nv_bfloat16*>(a.out)[static_cast<size_t>(row / G) * a.outStride + column] = __float2bfloat16_rn(value / runSum[r]);
  }
}

Status Check(const FusedPrefillAttentionArgs& a) {
  CSKV_TRY(CheckFusedAttentionSources(a, "fusedPrefillAttention"));
  const char* problem = nullptr;
  if (a.out == nullptr) problem = "a buffer is missing";
  else if (a.outStride < static_cast<size_t>(a.heads) * a.headDim) problem = "outStride must hold every head";
  if (problem != nullptr) return Status::Error("BAD_ARGUMENT", std::string("fusedPrefillAttention: ") + problem);
  return Status::Ok();
}

}  // namespace

size_t FusedPrefillAttentionSharedBytes(const FusedPrefillAttentionArgs& a) { return PlanShared(a).floats * sizeof(float); }

Status LaunchFusedPrefillAttention(const FusedPrefillAttentionArgs& a, cudaStream_t stream) {
  const char* op = "fusedPrefillAttention";
  CSKV_TRY(Check(a));
  const size_t bytes = FusedPrefillAttentionSharedBytes(a);
  CSKV_TRY(AllowSharedBytes(reinterpret_cast<const void*>(FusedPrefillAttentionKernel), bytes, op, a));
  const int64_t rows = static_cast<int64_t>(a.queries) * (a.heads / a.kvHeads);
  const dim3 grid(static_cast<unsigned>((rows + kRows - 1) / kRows), static_cast<unsigned>(a.kvHeads));
  FusedPrefillAttentionKernel<<<grid, kThreads, bytes, stream>>>(a);
  CSKV_CUDA_TRY(cudaGetLastError(), "fusedPrefillAttention kernel launch");
  return Status::Ok();
}

}  // namespace cskv
