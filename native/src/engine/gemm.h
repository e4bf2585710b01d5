// Matrix products through cuBLASLt, opened at run time (../cublasLt.h). One shape of product serves the engine:
//   out[M, N] (row-major, f32 or bf16) = alpha * a[M, K] (bf16, row-major) * b[N, K]^T (bf16, row-major) + beta * out
// b is a weight as checkpoints store it ([out features, in features]); beta = 1 adds into out (the residual
// stream). In cuBLASLt's column-major terms that is out^T = b^T' a^T with b transposed (op T) and a not.
#pragma once

#ifdef CSKV_WITH_CUDA

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

#include "../cublasLt.h"
#include "../deviceBuffer.h"
#include "../status.h"
#include "cublasLtValues.h"

namespace cskv {


enum class GemmOut { kF32, kBf16 };

class Gemm {
 public:
  Gemm() = default;
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  ~Gemm();

  // Opens cuBLASLt (overridePath, else the soname), makes a handle and a workspace.
  Status Init(const std::string& overridePath, size_t workspaceBytes);

  Status Run(const char* operation, int64_t M, int64_t N, int64_t K, const uint16_t* a, const uint16_t* b, GemmOut outType, void* out, float beta,
             cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc desc = nullptr;
    cublasLtMatrixLayout a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo algo{};
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, int, bool>;
  Status PlanFor(const char* operation, int64_t M, int64_t N, int64_t K, GemmOut outType, bool accumulate, Plan*& plan);
  Status Check(int status, const char* call, const char* operation) const;
  void DropPlans();
  static constexpr size_t kMaxPlans = 512;

  CublasLt lt_;
  cublasLtHandle handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Key, Plan> plans_;
};

}  // namespace cskv

#endif  // CSKV_WITH_CUDA
