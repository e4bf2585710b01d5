#include "q8Reference.h"

#include "../kernels/q8Layout.h"

namespace cskv {

void Q8DequantiseReference(const int8_t* codes, const float* scales, size_t k, size_t first, size_t count, double* out) {
  const size_t blocksPerRow = Q8BlocksPerRow(k), stride = blocksPerRow * kQ8Block;
  for (size_t r = 0; r < count; r++) {
    for (size_t c = 0; c < k; c++) {
      out[r * k + c] = static_cast<double>(codes[(first + r) * stride + c]) * static_cast<double>(scales[(first + r) * blocksPerRow + c / kQ8Block]);
    }
  }
}

void Q8LinearReference(const float* x, size_t rows, const int8_t* codes, const float* scales, size_t n, size_t k, const float* accumulate,
                       double* out) {
  const size_t blocksPerRow = Q8BlocksPerRow(k), stride = blocksPerRow * kQ8Block;
  for (size_t m = 0; m < rows; m++) {
    for (size_t r = 0; r < n; r++) {
      double sum = accumulate != nullptr ? static_cast<double>(accumulate[m * n + r]) : 0.0;
      for (size_t c = 0; c < k; c++) {
        sum += static_cast<double>(x[m * k + c]) * static_cast<double>(codes[r * stride + c]) * static_cast<double>(scales[r * blocksPerRow + c / kQ8Block]);
      }
      out[m * n + r] = sum;
    }
  }
}

}  // namespace cskv
