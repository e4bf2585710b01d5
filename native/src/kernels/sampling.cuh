// Picks the next token on the device, so one id crosses to the host per step instead of a row of logits.
// Greedy: the first index of the largest logit (as the runtime's argmax). Otherwise the candidates are the logits
// at or above the top-k threshold (the k-th largest value; ties at it all stay), weighted exp((l - max) / T); top-p
// then keeps those at or above the largest threshold whose kept weight still reaches p of the total, and the token
// is the one whose interval in index order holds u * (kept weight). The thresholds are found by bisection over
// the logits' ordered bit patterns, so nothing is sorted. The same algorithm in float64 is the test reference
// (test/gpu/reference.ts); it keeps the same tokens as the runtime's sorting Sampler except for ties.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"

namespace cskv {

struct SampleParams {
  bool greedy = true;
  float temperature = 1.f;
  int topK = 0;      // 0: no top-k cut
  float topP = 1.f;  // 1: no top-p cut
  double u = 0.0;    // uniform in [0, 1) from the host's seeded generator
};

// logits: device [vocab] f32. token: device int32.
Status LaunchSample(const float* logits, int vocab, const SampleParams& params, int32_t* token, cudaStream_t stream);

}  // namespace cskv
