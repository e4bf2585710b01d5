// The CPU-only build's engine: it cannot be made, and says why.
#include "deviceEngine.h"

namespace cskv {

struct DeviceEngine::Impl {};

DeviceEngine::DeviceEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceEngine::~DeviceEngine() = default;

Status DeviceEngine::Create(const ModelSpec& spec, const std::string&, std::unique_ptr<DeviceEngine>&) {
  CSKV_TRY(ValidateModelSpec(spec));
  return Status::Error("BACKEND", "createEngine: this addon was built without CUDA (no nvcc at build time)");
}

// Never reached: no DeviceEngine exists in this build.
const ModelSpec& DeviceEngine::spec() const { static const ModelSpec none; return none; }
const CacheLayout& DeviceEngine::layout() const { static const CacheLayout none; return none; }
int64_t DeviceEngine::length() const { return 0; }
int64_t DeviceEngine::compressedTokens() const { return 0; }
Status DeviceEngine::LoadTensor(TensorRole, int, const std::string&, const uint8_t*, size_t) { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::LoadTensorQ8(TensorRole, int, const int8_t*, size_t, const float*, size_t) { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::LoadTensorQ4(TensorRole, int, const uint8_t*, size_t, const uint16_t*, size_t) { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::FinishLoading() { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::Forward(const int32_t*, size_t, const double*, int, float*) { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::Sample(const SampleRequest&, int32_t&) { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::Truncate(int64_t, int64_t&) { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::Memory(EngineMemory&) const { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::ExportLayer(int, LayerState&) const { return Status::Error("BACKEND", "no CUDA"); }
Status DeviceEngine::ImportState(int64_t, int64_t, const std::vector<LayerState>&) { return Status::Error("BACKEND", "no CUDA"); }

}  // namespace cskv
