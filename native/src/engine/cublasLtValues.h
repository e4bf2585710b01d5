// The cuBLAS / CUDA enum values the GEMM passes to cuBLASLt, as cublasLt.h, cublas_api.h and library_types.h
// declare them (CUDA 12/13). The build machines have no cuBLAS headers, so they are written here once;
// native/check/cublasLtValues.cc checks each against the real headers on the GPU machine (test/gpu/device_check.sh).
#pragma once

namespace cskv {
namespace lt {

constexpr int kCudaR32F = 0;          // CUDA_R_32F
constexpr int kCudaR16BF = 14;        // CUDA_R_16BF
constexpr int kComputeF32 = 68;       // CUBLAS_COMPUTE_32F
constexpr int kOpN = 0;               // CUBLAS_OP_N
constexpr int kOpT = 1;               // CUBLAS_OP_T
constexpr int kDescTransA = 3;        // CUBLASLT_MATMUL_DESC_TRANSA
constexpr int kDescTransB = 4;        // CUBLASLT_MATMUL_DESC_TRANSB
constexpr int kPrefMaxWorkspace = 1;  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
constexpr int kStatusSuccess = 0;     // CUBLAS_STATUS_SUCCESS
constexpr int kStatusAllocFailed = 3; // CUBLAS_STATUS_ALLOC_FAILED

}  // namespace lt
}  // namespace cskv
