// Element types a kernel can read and write. Activations run in bf16 on the GPU; f32 is kept for checks and for
// the places (residual sums, logits) where bf16 would lose too much.
#pragma once

namespace cskv {

enum class DType { kF32, kBf16 };

inline const char* DTypeName(DType type) { return type == DType::kF32 ? "f32" : "bf16"; }
inline int DTypeBytes(DType type) { return type == DType::kF32 ? 4 : 2; }

}  // namespace cskv
