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

namespace cskv {

// The cuBLAS / CUDA enum values the GEMM passes, as in cublasLt.h, cublas_api.h and library_types.h (CUDA 12/13).
// native/check/cublasLtValues.cc checks each against the real headers on a machine that has them.
namespace lt {
constexpr int kCudaR32F = 0;             // CUDA_R_32F
constexpr int kCudaR16BF = 14;           // CUDA_R_16BF
constexpr int kComputeF32 = 68;          // CUBLAS_COMPUTE_32F
constexpr int kOpN = 0;                  // CUBLAS_OP_N
constexpr int kOpT = 1;                  // CUBLAS_OP_T
constexpr int kDescComputeType = 0;      // CUBLASLT_MATMUL_DESC_COMPUTE_TYPE (read-only after create; not set)
constexpr int kDescScaleType = 1;        // CUBLASLT_MATMUL_DESC_SCALE_TYPE
constexpr int kDescTransA = 3;           // CUBLASLT_MATMUL_DESC_TRANSA
constexpr int kDescTransB = 4;           // CUBLASLT_MATMUL_DESC_TRANSB
constexpr int kPrefMaxWorkspace = 1;     // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
constexpr int kStatusSuccess = 0;        // CUBLAS_STATUS_SUCCESS
}  // namespace lt

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

  CublasLt lt_;
  cublasLtHandle handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Key, Plan> plans_;
};

}  // namespace cskv

#endif  // CSKV_WITH_CUDA
