// addon.probe(options?) → Promise<probe result>: RunProbe on a worker thread (cuInit and context creation can
// take a second), resolved as a plain object. Never rejects for "CUDA unavailable"; that is the answer.
#pragma once

#include <napi.h>

namespace cskv {

Napi::Value Probe(const Napi::CallbackInfo& info);

}  // namespace cskv
