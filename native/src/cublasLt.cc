#include "cublasLt.h"

#include "buildInfo.h"

namespace cskv {

std::string CublasLtSoname() {
  const int major = kCudaBuildVersion > 0 ? kCudaBuildVersion / 1000 : 13;
  return "libcublasLt.so." + std::to_string(major);
}

CublasLt LoadCublasLt(const std::string& overridePath) {
  CublasLt lt;
  lt.library = DynamicLibrary::Open(overridePath.empty() ? CudaLibraryCandidates(CublasLtSoname()) : std::vector<std::string>{overridePath});
  if (!lt.library.loaded()) return lt;
  auto& missing = lt.missingSymbols;
#define CSKV_RESOLVE(name) lt.name = reinterpret_cast<decltype(lt.name)>(lt.library.Symbol(#name, missing))
  CSKV_RESOLVE(cublasLtGetVersion);
  CSKV_RESOLVE(cublasLtCreate);
  CSKV_RESOLVE(cublasLtDestroy);
  CSKV_RESOLVE(cublasLtMatmulDescCreate);
  CSKV_RESOLVE(cublasLtMatmulDescDestroy);
  CSKV_RESOLVE(cublasLtMatmulDescSetAttribute);
  CSKV_RESOLVE(cublasLtMatrixLayoutCreate);
  CSKV_RESOLVE(cublasLtMatrixLayoutDestroy);
  CSKV_RESOLVE(cublasLtMatmulPreferenceCreate);
  CSKV_RESOLVE(cublasLtMatmulPreferenceDestroy);
  CSKV_RESOLVE(cublasLtMatmulPreferenceSetAttribute);
  CSKV_RESOLVE(cublasLtMatmulAlgoGetHeuristic);
  CSKV_RESOLVE(cublasLtMatmul);
#undef CSKV_RESOLVE
  return lt;
}

}  // namespace cskv
