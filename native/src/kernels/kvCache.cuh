// The bi-branch cache's device writes and reads (layout in ../engine/cacheLayout.h):
// - WriteKv: a chunk's pre-RoPE keys and values (f32, from the QKV GEMM) into the bf16 ring at p % ringRows;
// - ProjectFeatures: the chunk's CSKV features c = (x - mean) U (f32, cskv.md) into the f32 feature ring;
// - StoreFeatures16: one block's features as fp16 into its page (16 bits); 8/4/2 bits use LaunchQuantise;
// - UnpackFeatures: every stored page's features back to bf16 rows [tokens, rank], for the key/value rebuild.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "quantLayout.h"

namespace cskv {

// rows: [count, rowStride] f32; the keys start at column kColumn and the values at vColumn, `channels` wide.
Status LaunchWriteKv(const float* rows, size_t rowStride, size_t kColumn, size_t vColumn, uint16_t* kRing, uint16_t* vRing,
                     int64_t firstPosition, size_t count, size_t channels, int ringRows, cudaStream_t stream);

// out[(firstPosition + t) % ringRows, j] = sum_c (rows[t, column + c] - mean[c]) * basis[c, j], basis [channels, rank].
Status LaunchProjectFeatures(const float* rows, size_t rowStride, size_t column, const float* mean, const float* basis, float* ring,
                             int64_t firstPosition, size_t count, size_t channels, int rank, int ringRows, cudaStream_t stream);

// f32 -> fp16 (round to nearest even), as the runtime's floatToHalfBits.
Status LaunchStoreFeatures16(const float* in, uint16_t* out, size_t count, cudaStream_t stream);

// Pages [blocks, pageBytes]: the features at `dataOffset` (fp16 at 16 bits, else codes with their (scale, zero)
// pairs at `scaleZeroOffset`, grouped as `grouping`) of the first `tokens` positions (whole blocks of `window`),
// written as bf16 [tokens, rank].
Status LaunchUnpackFeatures(const uint8_t* pages, size_t pageBytes, size_t dataOffset, size_t scaleZeroOffset, int bits, QuantGrouping grouping,
                            int window, int rank, int64_t tokens, uint16_t* out, cudaStream_t stream);

}  // namespace cskv
