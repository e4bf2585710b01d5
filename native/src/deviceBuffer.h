// One device allocation, freed when it goes out of scope. Every operation returns a Status naming the operation
// it belongs to; an allocation failure is OUT_OF_MEMORY.
#pragma once

#ifdef CSKV_WITH_CUDA

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

#include "cudaCheck.h"

namespace cskv {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  // Reached with a live pointer only on an error path, where the first error is the one reported.
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }

  Status Allocate(size_t bytes, const char* operation) {
    bytes_ = bytes;
    const std::string call = "cudaMalloc(" + std::to_string(bytes) + " bytes)";  // the size matters for OUT_OF_MEMORY
    return CudaStatus(cudaMalloc(&data_, bytes == 0 ? 1 : bytes), call.c_str(), operation);
  }
  Status Upload(const void* host, const char* operation) {
    CSKV_CUDA_TRY(cudaMemcpy(data_, host, bytes_, cudaMemcpyHostToDevice), operation);
    return Status::Ok();
  }
  Status Download(void* host, const char* operation) const {
    CSKV_CUDA_TRY(cudaMemcpy(host, data_, bytes_, cudaMemcpyDeviceToHost), operation);
    return Status::Ok();
  }
  // All bits set: NaN in f32, bf16 and f16, code 255 in bytes. Outputs are poisoned before each kernel so a
  // kernel that skips an element is caught instead of passing on stale or zeroed memory.
  Status Poison(const char* operation) {
    CSKV_CUDA_TRY(cudaMemset(data_, 0xff, bytes_), operation);
    return Status::Ok();
  }
  Status Free(const char* operation) {
    void* data = data_;
    data_ = nullptr;
    CSKV_CUDA_TRY(cudaFree(data), operation);
    return Status::Ok();
  }

  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace cskv

#endif  // CSKV_WITH_CUDA
