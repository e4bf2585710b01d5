#include "q4Reference.h"

#include <cmath>

#include "../kernels/q4Layout.h"

namespace cskv {
namespace {

double HalfToDouble(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double sign = (h & 0x8000) != 0 ? -1.0 : 1.0;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31) return mantissa == 0 ? sign * INFINITY : NAN;
  return sign * std::ldexp(mantissa + 1024, exponent - 25);
}

double Weight(const uint8_t* codes, const uint16_t* scaleMin, size_t blocksPerRow, size_t r, size_t c) {
  const uint8_t byte = codes[r * blocksPerRow * kQ4BlockBytes + c / 2];
  const int code = (c & 1) == 0 ? byte & 15 : byte >> 4;
  const size_t block = r * blocksPerRow + c / kQ4Block;
  return code * HalfToDouble(scaleMin[2 * block]) - HalfToDouble(scaleMin[2 * block + 1]);
}

}  // namespace

void Q4DequantiseReference(const uint8_t* codes, const uint16_t* scaleMin, size_t k, size_t first, size_t count, double* out) {
  const size_t blocksPerRow = Q4BlocksPerRow(k);
  for (size_t r = 0; r < count; r++) {
    for (size_t c = 0; c < k; c++) out[r * k + c] = Weight(codes, scaleMin, blocksPerRow, first + r, c);
  }
}

void Q4LinearReference(const float* x, size_t rows, const uint8_t* codes, const uint16_t* scaleMin, size_t n, size_t k, const float* accumulate,
                       double* out) {
  const size_t blocksPerRow = Q4BlocksPerRow(k);
  for (size_t m = 0; m < rows; m++) {
    for (size_t r = 0; r < n; r++) {
      double sum = accumulate != nullptr ? static_cast<double>(accumulate[m * n + r]) : 0.0;
      for (size_t c = 0; c < k; c++) sum += static_cast<double>(x[m * k + c]) * Weight(codes, scaleMin, blocksPerRow, r, c);
      out[m * n + r] = sum;
    }
  }
}

}  // namespace cskv
