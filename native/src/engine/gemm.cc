#include "gemm.h"

#ifdef CSKV_WITH_CUDA

#include <string>

namespace cskv {

Gemm::~Gemm() {
  if (!lt_.usable()) return;
  DropPlans();
  if (handle_ != nullptr) lt_.cublasLtDestroy(handle_);
}

void Gemm::DropPlans() {
  for (auto& [key, plan] : plans_) {
    lt_.cublasLtMatrixLayoutDestroy(plan.a);
    lt_.cublasLtMatrixLayoutDestroy(plan.b);
    lt_.cublasLtMatrixLayoutDestroy(plan.c);
    lt_.cublasLtMatmulDescDestroy(plan.desc);
  }
  plans_.clear();
}

Status Gemm::Check(int status, const char* call, const char* operation) const {
  if (status == lt::kStatusSuccess) return Status::Ok();
  return Status::Error(status == lt::kStatusAllocFailed ? "OUT_OF_MEMORY" : "CUDA",
                       std::string(operation) + ": " + call + " failed with cuBLAS status " + std::to_string(status));
}

Status Gemm::Init(const std::string& overridePath, size_t workspaceBytes) {
  lt_ = LoadCublasLt(overridePath);
  if (!lt_.library.loaded()) return Status::Error("BACKEND", "gemm: cuBLASLt could not be opened: " + lt_.library.error());
  if (!lt_.missingSymbols.empty()) return Status::Error("BACKEND", "gemm: " + lt_.library.path() + " lacks " + lt_.missingSymbols.front());
  CSKV_TRY(Check(lt_.cublasLtCreate(&handle_), "cublasLtCreate", "gemm"));
  CSKV_TRY(workspace_.Allocate(workspaceBytes, "gemm workspace"));
  return Status::Ok();
}

Status Gemm::PlanFor(const char* operation, int64_t M, int64_t N, int64_t K, GemmOut outType, bool accumulate, Plan*& result) {
  const Key key{M, N, K, static_cast<int>(outType), accumulate};
  auto found = plans_.find(key);
  if (found != plans_.end()) {
    result = &found->second;
    return Status::Ok();
  }
  // The rebuild's row count grows with the compressed branch, so shapes keep coming: keep the cache bounded.
  if (plans_.size() >= kMaxPlans) DropPlans();
  Plan plan;
  const int outCuda = outType == GemmOut::kF32 ? lt::kCudaR32F : lt::kCudaR16BF;
  CSKV_TRY(Check(lt_.cublasLtMatmulDescCreate(&plan.desc, lt::kComputeF32, lt::kCudaR32F), "cublasLtMatmulDescCreate", operation));
  const int transA = lt::kOpT, transB = lt::kOpN;
  // Column-major view: A = b as [K, N] with ld K, transposed; B = a as [K, M] with ld K; C = out as [N, M], ld N.
  CSKV_TRY(Check(lt_.cublasLtMatmulDescSetAttribute(plan.desc, lt::kDescTransA, &transA, sizeof(transA)), "set TRANSA", operation));
  CSKV_TRY(Check(lt_.cublasLtMatmulDescSetAttribute(plan.desc, lt::kDescTransB, &transB, sizeof(transB)), "set TRANSB", operation));
  CSKV_TRY(Check(lt_.cublasLtMatrixLayoutCreate(&plan.a, lt::kCudaR16BF, K, N, K), "cublasLtMatrixLayoutCreate(A)", operation));
  CSKV_TRY(Check(lt_.cublasLtMatrixLayoutCreate(&plan.b, lt::kCudaR16BF, K, M, K), "cublasLtMatrixLayoutCreate(B)", operation));
  CSKV_TRY(Check(lt_.cublasLtMatrixLayoutCreate(&plan.c, outCuda, N, M, N), "cublasLtMatrixLayoutCreate(C)", operation));
  cublasLtMatmulPreference preference = nullptr;
  CSKV_TRY(Check(lt_.cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate", operation));
  const uint64_t workspace = workspace_.bytes();
  int returned = 0;
  cublasLtMatmulHeuristicResult heuristic{};
  Status status = Check(lt_.cublasLtMatmulPreferenceSetAttribute(preference, lt::kPrefMaxWorkspace, &workspace, sizeof(workspace)),
                        "set MAX_WORKSPACE_BYTES", operation);
  if (status.ok()) {
    status = Check(lt_.cublasLtMatmulAlgoGetHeuristic(handle_, plan.desc, plan.a, plan.b, plan.c, plan.c, preference, 1, &heuristic, &returned),
                   "cublasLtMatmulAlgoGetHeuristic", operation);
  }
  lt_.cublasLtMatmulPreferenceDestroy(preference);
  if (status.ok() && returned == 0) {
    status = Status::Error("CUDA", std::string(operation) + ": cuBLASLt has no algorithm for " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                                       std::to_string(K) + " bf16");
  }
  if (!status.ok()) {
    lt_.cublasLtMatrixLayoutDestroy(plan.a);
    lt_.cublasLtMatrixLayoutDestroy(plan.b);
    lt_.cublasLtMatrixLayoutDestroy(plan.c);
    lt_.cublasLtMatmulDescDestroy(plan.desc);
    return status;
  }
  plan.algo = heuristic.algo;
  result = &plans_.emplace(key, plan).first->second;
  return Status::Ok();
}

Status Gemm::Run(const char* operation, int64_t M, int64_t N, int64_t K, const uint16_t* a, const uint16_t* b, GemmOut outType, void* out, float beta,
                 cudaStream_t stream) {
  if (M <= 0 || N <= 0 || K <= 0) return Status::Error("BAD_ARGUMENT", std::string(operation) + ": empty matrix product");
  if (handle_ == nullptr) return Status::Error("BACKEND", std::string(operation) + ": cuBLASLt is not initialised");
  Plan* plan = nullptr;
  CSKV_TRY(PlanFor(operation, M, N, K, outType, beta != 0.f, plan));
  const float alpha = 1.f;
  CSKV_TRY(Check(lt_.cublasLtMatmul(handle_, plan->desc, &alpha, b, plan->a, a, plan->b, &beta, out, plan->c, out, plan->c, &plan->algo,
                                    workspace_.as<void>(), workspace_.bytes(), stream),
                 "cublasLtMatmul", operation));
  return Status::Ok();
}

}  // namespace cskv

#endif  // CSKV_WITH_CUDA
