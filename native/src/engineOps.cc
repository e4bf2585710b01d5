#include "engineOps.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/deviceEngine.h"
#include "jsErrors.h"

namespace cskv {
namespace {

[[noreturn]] void Bad(Napi::Env env, const std::string& what) { ThrowStatus(env, Status::Error("BAD_ARGUMENT", what)); }

void Check(Napi::Env env, const Status& status) {
  if (!status.ok()) ThrowStatus(env, status);
}

double Number(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) Bad(env, std::string(where) + ": " + key + " must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

int Integer(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  const double v = Number(env, o, key, where);
  if (std::floor(v) != v || std::fabs(v) > 2147483647.0) Bad(env, std::string(where) + ": " + key + " must be an integer");
  return static_cast<int>(v);
}

bool Boolean(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  const Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) Bad(env, std::string(where) + ": " + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::vector<int> Integers(Napi::Env env, const Napi::Object& o, const char* key, const char* where) {
  const Napi::Value v = o.Get(key);
  std::vector<int> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) Bad(env, std::string(where) + ": " + key + " must be an array of integers");
  const Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    const Napi::Value e = a.Get(i);
    if (!e.IsNumber() || std::floor(e.As<Napi::Number>().DoubleValue()) != e.As<Napi::Number>().DoubleValue()) {
      Bad(env, std::string(where) + ": " + key + " must be an array of integers");
    }
    out.push_back(e.As<Napi::Number>().Int32Value());
  }
  return out;
}

Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* where) {
  if (info.Length() <= index || !info[index].IsObject()) Bad(info.Env(), std::string(where) + ": expects an object");
  return info[index].As<Napi::Object>();
}

CacheSpec ReadCacheSpec(Napi::Env env, const Napi::Object& o, const char* where) {
  CacheSpec c;
  c.layers = Integer(env, o, "layers", where);
  c.kvDim = Integer(env, o, "kvDim", where);
  c.window = Integer(env, o, "window", where);
  c.bits = Integer(env, o, "bits", where);
  c.kRanks = Integers(env, o, "kRanks", where);
  c.vRanks = Integers(env, o, "vRanks", where);
  const double capacity = Number(env, o, "capacityTokens", where);
  if (std::floor(capacity) != capacity || capacity < 1 || capacity > 9007199254740991.0) Bad(env, std::string(where) + ": capacityTokens must be a positive integer");
  c.capacityTokens = static_cast<int64_t>(capacity);
  c.chunkTokens = Integer(env, o, "chunkTokens", where);
  return c;
}

ModelSpec ReadModelSpec(Napi::Env env, const Napi::Object& o) {
  const char* where = "CudaEngine";
  ModelSpec s;
  s.hidden = Integer(env, o, "hidden", where);
  s.layers = Integer(env, o, "layers", where);
  s.heads = Integer(env, o, "heads", where);
  s.kvHeads = Integer(env, o, "kvHeads", where);
  s.headDim = Integer(env, o, "headDim", where);
  s.intermediate = Integer(env, o, "intermediate", where);
  s.vocab = Integer(env, o, "vocab", where);
  s.rmsNormEps = static_cast<float>(Number(env, o, "rmsNormEps", where));
  s.qkvBias = Boolean(env, o, "qkvBias", where);
  s.outputBias = Boolean(env, o, "outputBias", where);
  s.mlpBias = Boolean(env, o, "mlpBias", where);
  s.tiedEmbeddings = Boolean(env, o, "tiedEmbeddings", where);
  s.slidingWindow = Integer(env, o, "slidingWindow", where);
  const Napi::Value weights = o.Get("weights");
  const std::string format = weights.IsUndefined() ? "bf16" : weights.IsString() ? weights.As<Napi::String>().Utf8Value() : "";
  if (format != "bf16" && format != "q8" && format != "q4") Bad(env, std::string(where) + ": weights must be \"bf16\", \"q8\" or \"q4\"");
  s.weights = format == "q8" ? LinearFormat::kQ8 : format == "q4" ? LinearFormat::kQ4 : LinearFormat::kBf16;
  // decodeAttention / prefillAttention: "rebuild" (default) or "fused".
  const auto fused = [&](const char* key) {
    const Napi::Value v = o.Get(key);
    const std::string path = v.IsUndefined() ? "rebuild" : v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
    if (path != "rebuild" && path != "fused") Bad(env, std::string(where) + ": " + key + " must be \"rebuild\" or \"fused\"");
    return path == "fused";
  };
  s.fusedDecodeAttention = fused("decodeAttention");
  s.fusedPrefillAttention = fused("prefillAttention");
  s.attentionFactor = Number(env, o, "attentionFactor", where);
  s.device = Integer(env, o, "device", where);
  const Napi::Value freq = o.Get("invFreq");
  if (!freq.IsTypedArray() || freq.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) Bad(env, "CudaEngine: invFreq must be a Float64Array");
  const Napi::Float64Array f = freq.As<Napi::Float64Array>();
  s.invFreq.assign(f.Data(), f.Data() + f.ElementLength());
  const Napi::Value cache = o.Get("cache");
  if (!cache.IsObject()) Bad(env, "CudaEngine: cache must be an object");
  s.cache = ReadCacheSpec(env, cache.As<Napi::Object>(), "CudaEngine cache");
  return s;
}

template <typename T>
Napi::Value TypedCopy(Napi::Env env, const std::vector<T>& data);
template <>
Napi::Value TypedCopy(Napi::Env env, const std::vector<uint16_t>& d) {
  Napi::Uint16Array a = Napi::Uint16Array::New(env, d.size());
  std::copy(d.begin(), d.end(), a.Data());
  return a;
}
template <>
Napi::Value TypedCopy(Napi::Env env, const std::vector<float>& d) {
  Napi::Float32Array a = Napi::Float32Array::New(env, d.size());
  std::copy(d.begin(), d.end(), a.Data());
  return a;
}
template <>
Napi::Value TypedCopy(Napi::Env env, const std::vector<uint8_t>& d) {
  Napi::Uint8Array a = Napi::Uint8Array::New(env, d.size());
  std::copy(d.begin(), d.end(), a.Data());
  return a;
}

template <typename Array, typename T>
void ReadTyped(Napi::Env env, const Napi::Object& o, const char* key, napi_typedarray_type type, std::vector<T>& out, bool optional) {
  const Napi::Value v = o.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) Bad(env, std::string("restore: layer.") + key + " has the wrong type");
  const Array a = v.As<Array>();
  out.assign(a.Data(), a.Data() + a.ElementLength());
}

Napi::Object LayoutObject(Napi::Env env, const CacheLayout& layout) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("capacityTokens", static_cast<double>(layout.capacityTokens));
  o.Set("fullCapacity", layout.fullCapacity);
  o.Set("maxChunkTokens", layout.maxChunkTokens);
  o.Set("maxBlocks", static_cast<double>(layout.maxBlocks));
  o.Set("reservedBytes", static_cast<double>(layout.reservedBytes));
  Napi::Array layers = Napi::Array::New(env, layout.layers.size());
  for (size_t i = 0; i < layout.layers.size(); i++) {
    const LayerLayout& l = layout.layers[i];
    Napi::Object e = Napi::Object::New(env);
    e.Set("kRank", l.kRank);
    e.Set("vRank", l.vRank);
    Napi::Object page = Napi::Object::New(env);
    page.Set("kData", static_cast<double>(l.page.kData));
    page.Set("kScaleZero", static_cast<double>(l.page.kScaleZero));
    page.Set("vData", static_cast<double>(l.page.vData));
    page.Set("vScaleZero", static_cast<double>(l.page.vScaleZero));
    page.Set("bytes", static_cast<double>(l.page.bytes));
    e.Set("page", page);
    e.Set("fullReservedBytes", static_cast<double>(l.fullReservedBytes));
    e.Set("compressedReservedBytes", static_cast<double>(l.compressedReservedBytes));
    layers.Set(static_cast<uint32_t>(i), e);
  }
  o.Set("layers", layers);
  return o;
}

class CudaEngineWrap;

// forward() off the JavaScript thread.
class ForwardWorker : public Napi::AsyncWorker {
 public:
  ForwardWorker(Napi::Env env, CudaEngineWrap* owner, DeviceEngine* engine, std::vector<int32_t> tokens, std::vector<double> invFreq, int logitRows,
                bool copyLogits)
      : Napi::AsyncWorker(env, "cskv.forward"), deferred_(Napi::Promise::Deferred::New(env)), owner_(owner), engine_(engine),
        tokens_(std::move(tokens)), invFreq_(std::move(invFreq)), logitRows_(logitRows), copyLogits_(copyLogits) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    if (copyLogits_) logits_.resize(static_cast<size_t>(logitRows_) * engine_->spec().vocab);
    status_ = engine_->Forward(tokens_.data(), tokens_.size(), invFreq_.empty() ? nullptr : invFreq_.data(), logitRows_,
                               copyLogits_ ? logits_.data() : nullptr);
  }
  void OnOK() override;

 private:
  Napi::Promise::Deferred deferred_;
  CudaEngineWrap* owner_;
  DeviceEngine* engine_;
  std::vector<int32_t> tokens_;
  std::vector<double> invFreq_;
  int logitRows_;
  bool copyLogits_;
  std::vector<float> logits_;
  Status status_;
};

class CudaEngineWrap : public Napi::ObjectWrap<CudaEngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaEngine",
                       {
                           InstanceMethod("loadTensor", &CudaEngineWrap::LoadTensor),
                           InstanceMethod("loadTensorQ8", &CudaEngineWrap::LoadTensorQ8),
                           InstanceMethod("loadTensorQ4", &CudaEngineWrap::LoadTensorQ4),
                           InstanceMethod("finishLoading", &CudaEngineWrap::FinishLoading),
                           InstanceMethod("forward", &CudaEngineWrap::Forward),
                           InstanceMethod("sample", &CudaEngineWrap::Sample),
                           InstanceMethod("truncate", &CudaEngineWrap::Truncate),
                           InstanceMethod("state", &CudaEngineWrap::State),
                           InstanceMethod("memory", &CudaEngineWrap::Memory),
                           InstanceMethod("layout", &CudaEngineWrap::Layout),
                           InstanceMethod("exportLayer", &CudaEngineWrap::ExportLayer),
                           InstanceMethod("importState", &CudaEngineWrap::ImportState),
                           InstanceMethod("dispose", &CudaEngineWrap::Dispose),
                       });
  }

  // new CudaEngine(spec, cublasLtPath?)
  explicit CudaEngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaEngineWrap>(info) {
    Napi::Env env = info.Env();
    const ModelSpec spec = ReadModelSpec(env, ObjectArg(info, 0, "CudaEngine"));
    const std::string cublasLt = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    Check(env, DeviceEngine::Create(spec, cublasLt, engine_));
  }

  void Finished() { busy_ = false; }

 private:
  DeviceEngine& Engine(Napi::Env env, const char* op) {
    if (!engine_) Bad(env, std::string(op) + ": the engine was disposed");
    if (busy_) Bad(env, std::string(op) + ": a forward is still running on this engine");
    return *engine_;
  }

  // loadTensor(role, layer, dtype, bytes: Uint8Array)
  Napi::Value LoadTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DeviceEngine& e = Engine(env, "loadTensor");
    if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsString() || !info[3].IsTypedArray() ||
        info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Bad(env, "loadTensor: expects (role, layer, dtype, bytes: Uint8Array)");
    }
    TensorRole role;
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    if (!ParseTensorRole(name, role)) Bad(env, "loadTensor: unknown tensor role \"" + name + "\"");
    const Napi::Uint8Array bytes = info[3].As<Napi::Uint8Array>();
    Check(env, e.LoadTensor(role, info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::String>().Utf8Value(), bytes.Data(), bytes.ByteLength()));
    return env.Undefined();
  }

  // loadTensorQ8(role, layer, codes: Int8Array, scales: Float32Array)
  Napi::Value LoadTensorQ8(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DeviceEngine& e = Engine(env, "loadTensorQ8");
    if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int8_array || !info[3].IsTypedArray() ||
        info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      Bad(env, "loadTensorQ8: expects (role, layer, codes: Int8Array, scales: Float32Array)");
    }
    TensorRole role;
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    if (!ParseTensorRole(name, role)) Bad(env, "loadTensorQ8: unknown tensor role \"" + name + "\"");
    const Napi::Int8Array codes = info[2].As<Napi::Int8Array>();
    const Napi::Float32Array scales = info[3].As<Napi::Float32Array>();
    Check(env, e.LoadTensorQ8(role, info[1].As<Napi::Number>().Int32Value(), codes.Data(), codes.ByteLength(), scales.Data(), scales.ElementLength()));
    return env.Undefined();
  }

  // loadTensorQ4(role, layer, codes: Uint8Array, scaleMin: Uint16Array)
  Napi::Value LoadTensorQ4(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DeviceEngine& e = Engine(env, "loadTensorQ4");
    if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || !info[3].IsTypedArray() ||
        info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array) {
      Bad(env, "loadTensorQ4: expects (role, layer, codes: Uint8Array, scaleMin: Uint16Array)");
    }
    TensorRole role;
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    if (!ParseTensorRole(name, role)) Bad(env, "loadTensorQ4: unknown tensor role \"" + name + "\"");
    const Napi::Uint8Array codes = info[2].As<Napi::Uint8Array>();
    const Napi::Uint16Array scaleMin = info[3].As<Napi::Uint16Array>();
    Check(env, e.LoadTensorQ4(role, info[1].As<Napi::Number>().Int32Value(), codes.Data(), codes.ByteLength(), scaleMin.Data(), scaleMin.ElementLength()));
    return env.Undefined();
  }

  Napi::Value FinishLoading(const Napi::CallbackInfo& info) {
    Check(info.Env(), Engine(info.Env(), "finishLoading").FinishLoading());
    return info.Env().Undefined();
  }

  // forward(tokens: Int32Array, logitRows, copyLogits, invFreq: Float64Array | null) → Promise<Float32Array | null>
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DeviceEngine& e = Engine(env, "forward");
    if (info.Length() < 3 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || !info[1].IsNumber() ||
        !info[2].IsBoolean()) {
      Bad(env, "forward: expects (tokens: Int32Array, logitRows, copyLogits, invFreq?)");
    }
    const Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
    std::vector<double> invFreq;
    if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) {
      if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) Bad(env, "forward: invFreq must be a Float64Array");
      const Napi::Float64Array f = info[3].As<Napi::Float64Array>();
      if (f.ElementLength() != static_cast<size_t>(e.spec().headDim / 2)) Bad(env, "forward: invFreq must have headDim / 2 entries");
      invFreq.assign(f.Data(), f.Data() + f.ElementLength());
    }
    auto* worker = new ForwardWorker(env, this, &e, std::vector<int32_t>(tokens.Data(), tokens.Data() + tokens.ElementLength()), std::move(invFreq),
                                     info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Boolean>().Value());
    busy_ = true;
    const Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  // sample({greedy, temperature, topK, topP, u}) → token id
  Napi::Value Sample(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DeviceEngine& e = Engine(env, "sample");
    const Napi::Object o = ObjectArg(info, 0, "sample");
    SampleRequest r;
    r.greedy = Boolean(env, o, "greedy", "sample");
    r.temperature = static_cast<float>(Number(env, o, "temperature", "sample"));
    r.topK = Integer(env, o, "topK", "sample");
    r.topP = static_cast<float>(Number(env, o, "topP", "sample"));
    r.u = Number(env, o, "u", "sample");
    int32_t token = 0;
    Check(env, e.Sample(r, token));
    return Napi::Number::New(env, token);
  }

  // truncate(length) → recomputeFrom
  Napi::Value Truncate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DeviceEngine& e = Engine(env, "truncate");
    if (info.Length() < 1 || !info[0].IsNumber()) Bad(env, "truncate: expects a length");
    int64_t from = 0;
    Check(env, e.Truncate(static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue()), from));
    return Napi::Number::New(env, static_cast<double>(from));
  }

  Napi::Value State(const Napi::CallbackInfo& info) {
    DeviceEngine& e = Engine(info.Env(), "state");
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("tokens", static_cast<double>(e.length()));
    o.Set("compressedTokens", static_cast<double>(e.compressedTokens()));
    return o;
  }

  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EngineMemory m;
    Check(env, Engine(env, "memory").Memory(m));
    Napi::Object o = Napi::Object::New(env);
    o.Set("tokens", static_cast<double>(m.tokens));
    o.Set("compressedTokens", static_cast<double>(m.compressedTokens));
    Napi::Array layers = Napi::Array::New(env, m.perLayer.size());
    for (size_t i = 0; i < m.perLayer.size(); i++) {
      Napi::Object l = Napi::Object::New(env);
      l.Set("fullBytes", static_cast<double>(m.perLayer[i].fullBytes));
      l.Set("compressedBytes", static_cast<double>(m.perLayer[i].compressedBytes));
      layers.Set(static_cast<uint32_t>(i), l);
    }
    o.Set("perLayer", layers);
    o.Set("cacheReservedBytes", static_cast<double>(m.cacheReservedBytes));
    o.Set("weightBytes", static_cast<double>(m.weightBytes));
    o.Set("scratchBytes", static_cast<double>(m.scratchBytes));
    o.Set("deviceTotalBytes", static_cast<double>(m.deviceTotalBytes));
    o.Set("deviceFreeBytes", static_cast<double>(m.deviceFreeBytes));
    return o;
  }

  Napi::Value Layout(const Napi::CallbackInfo& info) { return LayoutObject(info.Env(), Engine(info.Env(), "layout").layout()); }

  Napi::Value ExportLayer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DeviceEngine& e = Engine(env, "snapshot");
    if (info.Length() < 1 || !info[0].IsNumber()) Bad(env, "exportLayer: expects a layer index");
    LayerState s;
    Check(env, e.ExportLayer(info[0].As<Napi::Number>().Int32Value(), s));
    Napi::Object o = Napi::Object::New(env);
    o.Set("kFull", TypedCopy(env, s.kFull));
    o.Set("vFull", TypedCopy(env, s.vFull));
    o.Set("kPending", TypedCopy(env, s.kPending));
    o.Set("vPending", TypedCopy(env, s.vPending));
    o.Set("pages", TypedCopy(env, s.pages));
    return o;
  }

  // importState(tokens, compressedTokens, layers: {kFull, vFull, kPending, vPending, pages}[])
  Napi::Value ImportState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    DeviceEngine& e = Engine(env, "restore");
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsArray()) Bad(env, "importState: expects (tokens, compressedTokens, layers)");
    const Napi::Array array = info[2].As<Napi::Array>();
    std::vector<LayerState> layers(array.Length());
    for (uint32_t i = 0; i < array.Length(); i++) {
      if (!array.Get(i).IsObject()) Bad(env, "importState: each layer must be an object");
      const Napi::Object l = array.Get(i).As<Napi::Object>();
      ReadTyped<Napi::Uint16Array>(env, l, "kFull", napi_uint16_array, layers[i].kFull, false);
      ReadTyped<Napi::Uint16Array>(env, l, "vFull", napi_uint16_array, layers[i].vFull, false);
      ReadTyped<Napi::Float32Array>(env, l, "kPending", napi_float32_array, layers[i].kPending, true);
      ReadTyped<Napi::Float32Array>(env, l, "vPending", napi_float32_array, layers[i].vPending, true);
      ReadTyped<Napi::Uint8Array>(env, l, "pages", napi_uint8_array, layers[i].pages, true);
    }
    Check(env, e.ImportState(static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue()), static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue()),
                             layers));
    return env.Undefined();
  }

  // Frees the device memory now rather than when the object is collected.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (busy_) Bad(info.Env(), "dispose: a forward is still running on this engine");
    engine_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<DeviceEngine> engine_;
  bool busy_ = false;
};

void ForwardWorker::OnOK() {
  Napi::Env env = Env();
  owner_->Finished();
  if (!status_.ok()) {
    deferred_.Reject(TypedError(env, status_).Value());
    return;
  }
  if (!copyLogits_ || logitRows_ == 0) {
    deferred_.Resolve(copyLogits_ ? Napi::Float32Array::New(env, 0) : env.Null());
    return;
  }
  Napi::Float32Array out = Napi::Float32Array::New(env, logits_.size());
  std::copy(logits_.begin(), logits_.end(), out.Data());
  deferred_.Resolve(out);
}

// cacheLayout(cacheSpec) → the layout (cacheLayout.h), for the CPU tests and the memory plan.
Napi::Value CacheLayoutOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CacheLayout layout;
  Check(env, PlanCache(ReadCacheSpec(env, ObjectArg(info, 0, "cacheLayout"), "cacheLayout"), layout));
  return LayoutObject(env, layout);
}

int64_t LengthArg(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  if (info.Length() <= index || !info[index].IsNumber()) Bad(info.Env(), std::string(op) + ": " + name + " must be a number");
  const double v = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v < 0 || std::floor(v) != v || v > 9007199254740991.0) Bad(info.Env(), std::string(op) + ": " + name + " must be a non-negative integer");
  return static_cast<int64_t>(v);
}

// compressedLength(cacheSpec, tokens) → the positions the engine holds compressed with `tokens` cached.
Napi::Value CompressedLengthOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CacheLayout layout;
  Check(env, PlanCache(ReadCacheSpec(env, ObjectArg(info, 0, "compressedLength"), "compressedLength"), layout));
  return Napi::Number::New(env, static_cast<double>(CompressedBoundary(layout, LengthArg(info, 1, "compressedLength", "tokens"))));
}

// truncationPlan(cacheSpec, compressedTokens, length) → {compressedTokens, fullTokens, recomputeFrom}, as the
// engine truncates.
Napi::Value TruncationPlanOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CacheLayout layout;
  Check(env, PlanCache(ReadCacheSpec(env, ObjectArg(info, 0, "truncationPlan"), "truncationPlan"), layout));
  const TruncationPlan plan = PlanTruncation(layout, LengthArg(info, 1, "truncationPlan", "compressedTokens"), LengthArg(info, 2, "truncationPlan", "length"));
  Napi::Object o = Napi::Object::New(env);
  o.Set("compressedTokens", static_cast<double>(plan.compressedTokens));
  o.Set("fullTokens", static_cast<double>(plan.fullTokens));
  o.Set("recomputeFrom", static_cast<double>(plan.recomputeFrom));
  return o;
}

// attentionPlan(queries, keys, heads, multiprocessors) → {splits, keysPerSplit, partialRows, maxPartialRows}
Napi::Value AttentionPlanOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; i++) {
    if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().DoubleValue() < 1) Bad(env, "attentionPlan: expects four positive numbers");
  }
  const int64_t queries = info[0].As<Napi::Number>().Int64Value(), keys = info[1].As<Napi::Number>().Int64Value();
  const int heads = info[2].As<Napi::Number>().Int32Value(), sms = info[3].As<Napi::Number>().Int32Value();
  const AttentionPlan plan = PlanAttention(queries, keys, heads, sms);
  Napi::Object o = Napi::Object::New(env);
  o.Set("splits", plan.splits);
  o.Set("keysPerSplit", static_cast<double>(plan.keysPerSplit));
  o.Set("partialRows", static_cast<double>(plan.partialRows));
  o.Set("maxPartialRows", static_cast<double>(MaxAttentionPartialRows(queries, heads, sms)));
  o.Set("keyTile", kAttentionKeyTile);
  return o;
}

}  // namespace

void ExportEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("CudaEngine", CudaEngineWrap::Define(env));
  exports.Set("cacheLayout", Napi::Function::New(env, CacheLayoutOf, "cacheLayout"));
  exports.Set("attentionPlan", Napi::Function::New(env, AttentionPlanOf, "attentionPlan"));
  exports.Set("compressedLength", Napi::Function::New(env, CompressedLengthOf, "compressedLength"));
  exports.Set("truncationPlan", Napi::Function::New(env, TruncationPlanOf, "truncationPlan"));
}

}  // namespace cskv
