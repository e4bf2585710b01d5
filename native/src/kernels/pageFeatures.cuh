// One feature of one cached token, read from its compressed page (layout in ../engine/cacheLayout.h): fp16 at 16
// bits, else a packed code with its fp16 (scale, zero) pair, grouped as quantise.cuh groups keys and values.
// The one device reader of a page, for the rebuild path (kvCache.cu) and the fused attention (fusedCacheReads.cuh);
// where the features sit: PageFeatures (quantLayout.h).
#pragma once

#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>

#include "quantLayout.h"

namespace cskv {

__device__ __forceinline__ float HalfBitsToFloat(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// Feature j of the token at row `row` of block `block`.
__device__ __forceinline__ float PageFeature(const PageFeatures& f, size_t block, size_t row, size_t j) {
  const uint8_t* page = f.pages + block * f.pageBytes;
  const size_t index = row * f.rank + j;  // inside the block's [window, rank] features
  if (f.bits == 16) return HalfBitsToFloat(reinterpret_cast<const uint16_t*>(page + f.dataOffset)[index]);
  const int perByte = 8 / f.bits;
  const int code = (page[f.dataOffset + index / perByte] >> ((index % perByte) * f.bits)) & ((1 << f.bits) - 1);
  const uint16_t* scaleZero = reinterpret_cast<const uint16_t*>(page + f.scaleZeroOffset);
  const size_t pair = f.keys ? j : row * ((f.rank + kValueGroup - 1) / kValueGroup) + j / kValueGroup;
  // One rounding, as the runtime's double code * scale + zero stored to f32.
  return fmaf(static_cast<float>(code), HalfBitsToFloat(scaleZero[2 * pair]), HalfBitsToFloat(scaleZero[2 * pair + 1]));
}

}  // namespace cskv
