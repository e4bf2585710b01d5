// Compiled on the GPU machine against the real cuBLASLt headers (test/gpu/device_check.sh): every value and
// struct layout that native/src/cublasLt.h and native/src/engine/cublasLtValues.h declare by hand must match,
// or this file does not compile. Not part of the addon build (the build machines have no cuBLAS headers).
#include <cublasLt.h>

#include <cstddef>

#include "../src/cublasLt.h"
#include "../src/engine/cublasLtValues.h"

using namespace cskv;

static_assert(lt::kCudaR32F == CUDA_R_32F, "CUDA_R_32F");
static_assert(lt::kCudaR16BF == CUDA_R_16BF, "CUDA_R_16BF");
static_assert(lt::kComputeF32 == CUBLAS_COMPUTE_32F, "CUBLAS_COMPUTE_32F");
static_assert(lt::kOpN == CUBLAS_OP_N && lt::kOpT == CUBLAS_OP_T, "cublasOperation_t");
static_assert(lt::kDescTransA == CUBLASLT_MATMUL_DESC_TRANSA, "CUBLASLT_MATMUL_DESC_TRANSA");
static_assert(lt::kDescTransB == CUBLASLT_MATMUL_DESC_TRANSB, "CUBLASLT_MATMUL_DESC_TRANSB");
static_assert(lt::kPrefMaxWorkspace == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, "CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES");
static_assert(lt::kStatusSuccess == CUBLAS_STATUS_SUCCESS, "CUBLAS_STATUS_SUCCESS");
static_assert(lt::kStatusAllocFailed == CUBLAS_STATUS_ALLOC_FAILED, "CUBLAS_STATUS_ALLOC_FAILED");

static_assert(sizeof(cublasLtMatmulAlgo) == sizeof(cublasLtMatmulAlgo_t), "cublasLtMatmulAlgo_t size");
static_assert(sizeof(cublasLtMatmulHeuristicResult) == sizeof(cublasLtMatmulHeuristicResult_t), "cublasLtMatmulHeuristicResult_t size");
static_assert(offsetof(cublasLtMatmulHeuristicResult, workspaceSize) == offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize), "workspaceSize offset");
static_assert(offsetof(cublasLtMatmulHeuristicResult, state) == offsetof(cublasLtMatmulHeuristicResult_t, state), "state offset");
static_assert(offsetof(cublasLtMatmulHeuristicResult, wavesCount) == offsetof(cublasLtMatmulHeuristicResult_t, wavesCount), "wavesCount offset");
static_assert(sizeof(cublasStatus) == sizeof(cublasStatus_t), "cublasStatus_t size");

int main() { return 0; }
