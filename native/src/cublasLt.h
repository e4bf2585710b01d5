// cuBLASLt, loaded at run time: the build machines have no cuBLAS headers or libraries, so the entry points the
// GEMMs will use are declared here with the signatures of cublasLt.h (CUDA 12/13), handles as opaque pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dynamicLibrary.h"

namespace cskv {

using cublasStatus = int;  // cublasStatus_t; 0 is CUBLAS_STATUS_SUCCESS
using cublasLtHandle = void*;
using cublasLtMatmulDesc = void*;
using cublasLtMatrixLayout = void*;
using cublasLtMatmulPreference = void*;
struct cublasLtMatmulAlgo {
  uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult {
  cublasLtMatmulAlgo algo;
  size_t workspaceSize;
  cublasStatus state;
  float wavesCount;
  int reserved[4];
};

struct CublasLt {
  DynamicLibrary library;
  std::vector<std::string> missingSymbols;

  size_t (*cublasLtGetVersion)() = nullptr;
  cublasStatus (*cublasLtCreate)(cublasLtHandle* handle) = nullptr;
  cublasStatus (*cublasLtDestroy)(cublasLtHandle handle) = nullptr;
  cublasStatus (*cublasLtMatmulDescCreate)(cublasLtMatmulDesc* desc, int computeType, int scaleType) = nullptr;
  cublasStatus (*cublasLtMatmulDescDestroy)(cublasLtMatmulDesc desc) = nullptr;
  cublasStatus (*cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc desc, int attribute, const void* value, size_t bytes) = nullptr;
  cublasStatus (*cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout* layout, int type, uint64_t rows, uint64_t cols, int64_t ld) = nullptr;
  cublasStatus (*cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout layout) = nullptr;
  cublasStatus (*cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference* preference) = nullptr;
  cublasStatus (*cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference preference) = nullptr;
  cublasStatus (*cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference preference, int attribute, const void* value, size_t bytes) = nullptr;
  cublasStatus (*cublasLtMatmulAlgoGetHeuristic)(cublasLtHandle handle, cublasLtMatmulDesc desc, cublasLtMatrixLayout a,
                                                 cublasLtMatrixLayout b, cublasLtMatrixLayout c, cublasLtMatrixLayout d,
                                                 cublasLtMatmulPreference preference, int requested,
                                                 cublasLtMatmulHeuristicResult* results, int* returned) = nullptr;
  cublasStatus (*cublasLtMatmul)(cublasLtHandle handle, cublasLtMatmulDesc desc, const void* alpha, const void* a,
                                 cublasLtMatrixLayout aLayout, const void* b, cublasLtMatrixLayout bLayout, const void* beta,
                                 const void* c, cublasLtMatrixLayout cLayout, void* d, cublasLtMatrixLayout dLayout,
                                 const cublasLtMatmulAlgo* algo, void* workspace, size_t workspaceBytes, void* stream) = nullptr;

  bool usable() const { return library.loaded() && missingSymbols.empty(); }
};

// The soname this build expects: libcublasLt.so.<CUDA major> (cuBLASLt's ABI follows the toolkit's major).
std::string CublasLtSoname();

// Opens `overridePath` when given, else the soname from the loader path and the usual toolkit folders.
CublasLt LoadCublasLt(const std::string& overridePath);

}  // namespace cskv
