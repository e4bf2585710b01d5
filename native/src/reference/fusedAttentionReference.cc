#include "fusedAttentionReference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../engine/cacheLayout.h"
#include "../kernels/quantLayout.h"

namespace cskv {
namespace {

// IEEE binary16 bits -> value (exact).
double HalfBits(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double value;
  if (exponent == 0) value = std::ldexp(mantissa, -24);
  else if (exponent == 31) value = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  else value = std::ldexp(mantissa + 1024, exponent - 25);
  return sign ? -value : value;
}

uint16_t ReadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

double FeatureAt(const uint8_t* pages, const PageLayout& layout, int window, int rank, int bits, bool keys, int64_t position, int feature) {
  const int64_t row = position % window;
  const uint8_t* page = pages + static_cast<size_t>(position / window) * layout.bytes;
  const size_t index = static_cast<size_t>(row) * rank + feature;
  const uint8_t* data = page + (keys ? layout.kData : layout.vData);
  if (bits == 16) return HalfBits(ReadU16(data + 2 * index));
  const size_t bit = index * bits;
  const int code = (data[bit / 8] >> (bit % 8)) & ((1 << bits) - 1);
  const size_t pair = keys ? static_cast<size_t>(feature) : static_cast<size_t>(row) * ((rank + kValueGroup - 1) / kValueGroup) + feature / kValueGroup;
  const uint8_t* scaleZero = page + (keys ? layout.kScaleZero : layout.vScaleZero) + 4 * pair;
  // The runtime dequantises in double and stores the value as f32.
  return static_cast<float>(code * HalfBits(ReadU16(scaleZero)) + HalfBits(ReadU16(scaleZero + 2)));
}

struct Shape {
  const FusedAttentionInputs& in;
  PageLayout page;
  size_t kvDim, qDim;
  int half, group;
  explicit Shape(const FusedAttentionInputs& i)
      : in(i), kvDim(static_cast<size_t>(i.kvHeads) * i.headDim), qDim(static_cast<size_t>(i.heads) * i.headDim), half(i.headDim / 2),
        group(i.heads / i.kvHeads) {
    if (i.compressedTokens > 0) page = PlanPage(i.window, i.kRank, i.vRank, i.bits);
  }

  // cos, sin at position p and pair i, as the device's f32 rope table holds them.
  void Rope(int64_t p, int i, double& c, double& s) const {
    const double angle = static_cast<double>(p) * in.invFreq[i];
    c = static_cast<float>(std::cos(angle) * in.attentionFactor);
    s = static_cast<float>(std::sin(angle) * in.attentionFactor);
  }
  std::vector<double> Features(bool keys, int64_t p) const {
    const int rank = keys ? in.kRank : in.vRank;
    std::vector<double> f(rank);
    for (int j = 0; j < rank; j++) f[j] = FeatureAt(in.pages, page, in.window, rank, in.bits, keys, p, j);
    return f;
  }
  // Kv head g's channels at position p: from the ring, or rebuilt (mean + U f) when p is compressed.
  std::vector<double> Cached(bool keys, int64_t p, int g) const {
    std::vector<double> x(in.headDim);
    const size_t first = static_cast<size_t>(g) * in.headDim;
    if (p >= in.compressedTokens) {
      const float* row = (keys ? in.kRing : in.vRing) + static_cast<size_t>(p % in.ringRows) * kvDim + first;
      for (int c = 0; c < in.headDim; c++) x[c] = row[c];
      return x;
    }
    const int rank = keys ? in.kRank : in.vRank;
    const float* basis = keys ? in.kBasis : in.vBasis;
    const float* mean = keys ? in.kMean : in.vMean;
    const std::vector<double> f = Features(keys, p);
    for (int c = 0; c < in.headDim; c++) {
      double sum = mean[first + c];
      for (int j = 0; j < rank; j++) sum += f[j] * basis[(first + c) * rank + j];
      x[c] = sum;
    }
    return x;
  }
  // The rotated key and the value of kv head g at p, each built once (a prefill's queries share them).
  const std::vector<double>& Key(int64_t p, int g) const { return Memo(keys, p, g, [&] { return RotatedKey(p, g); }); }
  const std::vector<double>& Value(int64_t p, int g) const { return Memo(values, p, g, [&] { return Cached(false, p, g); }); }
  template <typename Build>
  const std::vector<double>& Memo(std::vector<std::vector<double>>& memo, int64_t p, int g, Build build) const {
    const int64_t positions = in.start + in.queries;
    if (memo.empty()) memo.resize(static_cast<size_t>(positions) * in.kvHeads);
    std::vector<double>& slot = memo[static_cast<size_t>(g) * positions + p];
    if (slot.empty()) slot = build();
    return slot;
  }
  const std::vector<double>& ValueFeatures(int64_t p) const { return Memo(valueFeatures, p, 0, [&] { return Features(false, p); }); }
  mutable std::vector<std::vector<double>> keys, values, valueFeatures;
  std::vector<double> RotatedKey(int64_t p, int g) const {
    const std::vector<double> x = Cached(true, p, g);
    std::vector<double> k(in.headDim);
    for (int i = 0; i < half; i++) {
      double c, s;
      Rope(p, i, c, s);
      k[i] = x[i] * c - x[i + half] * s;
      k[i + half] = x[i + half] * c + x[i] * s;
    }
    return k;
  }
  std::vector<double> Query(int t, int h) const {
    std::vector<double> q(in.headDim);
    const int64_t n = in.start + t;
    const float* row = in.q + static_cast<size_t>(t) * qDim + static_cast<size_t>(h) * in.headDim;
    const double scale = 1.0 / std::sqrt(static_cast<double>(in.headDim));
    for (int i = 0; i < half; i++) {
      double c, s;
      Rope(n, i, c, s);
      q[i] = (row[i] * c - row[i + half] * s) * scale;
      q[i + half] = (row[i + half] * c + row[i] * s) * scale;
    }
    return q;
  }
  int64_t First(int t) const {
    const int64_t n = in.start + t;
    return in.slidingWindow > 0 ? std::max<int64_t>(0, n - in.slidingWindow + 1) : 0;
  }
};

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); i++) sum += a[i] * b[i];
  return sum;
}

void OnePass(const Shape& s, int t, int h, double* out) {
  const FusedAttentionInputs& in = s.in;
  const int g = h / s.group;
  const int64_t n = in.start + t, lo = s.First(t);
  const std::vector<double> q = s.Query(t, h);
  std::vector<double> scores;
  for (int64_t p = lo; p <= n; p++) scores.push_back(Dot(q, s.Key(p, g)));
  const double best = *std::max_element(scores.begin(), scores.end());
  double total = 0;
  std::vector<double> value(in.headDim, 0.0);
  for (int64_t p = lo; p <= n; p++) {
    const double w = std::exp(scores[p - lo] - best);
    total += w;
    const std::vector<double>& v = s.Value(p, g);
    for (int c = 0; c < in.headDim; c++) value[c] += w * v[c];
  }
  for (int c = 0; c < in.headDim; c++) out[c] = value[c] / total;
}

struct Partial {
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  std::vector<double> value;
};

// Keys [lo, hi) as a kernel folds them: tiles of kFusedAttentionKeyTile from `origin` (<= lo) with a running max;
// ring values summed, compressed values' weights summed over their features, projected at the end.
Partial Fold(const Shape& s, int h, const std::vector<double>& q, int64_t origin, int64_t lo, int64_t hi) {
  const FusedAttentionInputs& in = s.in;
  const int g = h / s.group;
  Partial part;
  part.value.assign(in.headDim, 0.0);
  std::vector<double> features(in.vRank, 0.0);
  double compressedSum = 0;
  for (int64_t tileStart = origin; tileStart < hi; tileStart += kFusedAttentionKeyTile) {
    const int64_t tile = std::max(tileStart, lo), end = std::min<int64_t>(hi, tileStart + kFusedAttentionKeyTile);
    if (tile >= end) continue;  // no visible key in this tile (a row of a prefill tile before its window)
    std::vector<double> scores;
    double best = part.max;
    for (int64_t p = tile; p < end; p++) {
      scores.push_back(Dot(q, s.Key(p, g)));
      best = std::max(best, scores.back());
    }
    const double correction = std::exp(part.max - best);
    part.sum *= correction;
    compressedSum *= correction;
    for (double& v : part.value) v *= correction;
    for (double& f : features) f *= correction;
    for (int64_t p = tile; p < end; p++) {
      const double w = std::exp(scores[p - tile] - best);
      part.sum += w;
      if (p < in.compressedTokens) {
        compressedSum += w;
        const std::vector<double>& f = s.ValueFeatures(p);
        for (int j = 0; j < in.vRank; j++) features[j] += w * f[j];
      } else {
        const std::vector<double>& v = s.Value(p, g);
        for (int c = 0; c < in.headDim; c++) part.value[c] += w * v[c];
      }
    }
    part.max = best;
  }
  if (compressedSum > 0) {
    for (int c = 0; c < in.headDim; c++) {
      const size_t channel = static_cast<size_t>(g) * in.headDim + c;
      double v = compressedSum * in.vMean[channel];
      for (int j = 0; j < in.vRank; j++) v += features[j] * in.vBasis[channel * in.vRank + j];
      part.value[c] += v;
    }
  }
  return part;
}

}  // namespace

void FusedAttentionReference(const FusedAttentionInputs& in, int64_t keysPerSplit, double* out) {
  const Shape s(in);
  for (int t = 0; t < in.queries; t++) {
    for (int h = 0; h < in.heads; h++) {
      double* row = out + static_cast<size_t>(t) * s.qDim + static_cast<size_t>(h) * in.headDim;
      if (keysPerSplit <= 0) {
        OnePass(s, t, h, row);
        continue;
      }
      const int64_t n = in.start + t, first = s.First(t);
      const std::vector<double> q = s.Query(t, h);
      std::vector<Partial> parts;
      for (int64_t lo = 0; lo <= n; lo += keysPerSplit) {
        const int64_t splitFirst = std::max(lo, first);
        parts.push_back(Fold(s, h, q, splitFirst, splitFirst, std::min(lo + keysPerSplit, n + 1)));
      }
      double best = -std::numeric_limits<double>::infinity();
      for (const Partial& p : parts) best = std::max(best, p.max);
      double total = 0;
      std::vector<double> value(in.headDim, 0.0);
      for (const Partial& p : parts) {
        if (p.sum == 0) continue;  // a split with no visible key
        const double w = std::exp(p.max - best);
        total += w * p.sum;
        for (int c = 0; c < in.headDim; c++) value[c] += w * p.value[c];
      }
      for (int c = 0; c < in.headDim; c++) row[c] = value[c] / total;
    }
  }
}

void FusedPrefillAttentionReference(const FusedAttentionInputs& in, int rowsPerTile, double* out) {
  const Shape s(in);
  const int64_t rows = static_cast<int64_t>(in.queries) * s.group;
  for (int g = 0; g < in.kvHeads; g++) {
    for (int64_t firstRow = 0; firstRow < rows; firstRow += rowsPerTile) {
      // The tile's keys start at the first key its first row sees.
      const int64_t origin = s.First(static_cast<int>(firstRow / s.group));
      for (int64_t row = firstRow; row < std::min(rows, firstRow + rowsPerTile); row++) {
        const int t = static_cast<int>(row / s.group), h = g * s.group + static_cast<int>(row % s.group);
        const Partial part = Fold(s, h, s.Query(t, h), origin, s.First(t), in.start + t + 1);
        double* value = out + static_cast<size_t>(t) * s.qDim + static_cast<size_t>(h) * in.headDim;
        for (int c = 0; c < in.headDim; c++) value[c] = part.value[c] / part.sum;
      }
    }
  }
}

}  // namespace cskv
