#include "kernelOps.h"

#include <cmath>
#include <string>

#include "jsErrors.h"
#include "engine/cacheLayout.h"
#include "kernelRunners.h"
#include "reference/fusedAttentionReference.h"
#include "reference/q4Reference.h"
#include "reference/q8Reference.h"

namespace cskv {
namespace {

[[noreturn]] void BadArgument(Napi::Env env, const char* op, const std::string& what) {
  ThrowStatus(env, Status::Error("BAD_ARGUMENT", std::string(op) + ": " + what));
}

void Check(Napi::Env env, const Status& status) {
  if (!status.ok()) ThrowStatus(env, status);
}

template <typename Array>
Array TypedArg(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name, napi_typedarray_type type, const char* typeName) {
  if (info.Length() <= index || !info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != type) {
    BadArgument(info.Env(), op, std::string(name) + " must be a " + typeName);
  }
  return info[index].As<Array>();
}

Napi::Float32Array F32Arg(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  return TypedArg<Napi::Float32Array>(info, index, op, name, napi_float32_array, "Float32Array");
}

Napi::Uint16Array U16Arg(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  return TypedArg<Napi::Uint16Array>(info, index, op, name, napi_uint16_array, "Uint16Array");
}

size_t CountArg(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  if (info.Length() <= index || !info[index].IsNumber()) BadArgument(info.Env(), op, std::string(name) + " must be a number");
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(value) || value < 1 || value > 9007199254740991.0 || std::floor(value) != value) {
    BadArgument(info.Env(), op, std::string(name) + " must be a positive integer");
  }
  return static_cast<size_t>(value);
}

double NumberArg(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  if (info.Length() <= index || !info[index].IsNumber()) BadArgument(info.Env(), op, std::string(name) + " must be a number");
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(value)) BadArgument(info.Env(), op, std::string(name) + " must be finite");
  return value;
}

DType DTypeArg(const Napi::CallbackInfo& info, size_t index, const char* op) {
  const std::string name = info.Length() > index && info[index].IsString() ? info[index].As<Napi::String>().Utf8Value() : "";
  if (name == "f32") return DType::kF32;
  if (name == "bf16") return DType::kBf16;
  BadArgument(info.Env(), op, "dtype must be \"f32\" or \"bf16\"");
}

int BitsArg(const Napi::CallbackInfo& info, size_t index, const char* op) {
  const size_t bits = CountArg(info, index, op, "bits");
  if (bits != 8 && bits != 4 && bits != 2) BadArgument(info.Env(), op, "bits must be 8, 4 or 2");
  return static_cast<int>(bits);
}

// rmsNorm(x: Float32Array [rows, cols], weight: Float32Array [cols], eps, dtype) → Float32Array
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  const char* op = "rmsNorm";
  Napi::Env env = info.Env();
  Napi::Float32Array x = F32Arg(info, 0, op, "x");
  Napi::Float32Array weight = F32Arg(info, 1, op, "weight");
  const double eps = NumberArg(info, 2, op, "eps");
  const DType type = DTypeArg(info, 3, op);
  const size_t cols = weight.ElementLength();
  if (cols == 0 || x.ElementLength() % cols != 0) BadArgument(env, op, "x.length must be a multiple of weight.length");
  Napi::Float32Array out = Napi::Float32Array::New(env, x.ElementLength());
  Check(env, RunRmsNorm(type, x.Data(), weight.Data(), out.Data(), x.ElementLength() / cols, cols, static_cast<float>(eps)));
  return out;
}

// rope(x: Float32Array [tokens, heads, headDim], positions: Int32Array [tokens], invFreq: Float64Array [headDim/2],
//      attentionFactor, heads, dtype) → Float32Array
Napi::Value Rope(const Napi::CallbackInfo& info) {
  const char* op = "rope";
  Napi::Env env = info.Env();
  Napi::Float32Array x = F32Arg(info, 0, op, "x");
  auto positions = TypedArg<Napi::Int32Array>(info, 1, op, "positions", napi_int32_array, "Int32Array");
  auto invFreq = TypedArg<Napi::Float64Array>(info, 2, op, "invFreq", napi_float64_array, "Float64Array");
  const double attentionFactor = NumberArg(info, 3, op, "attentionFactor");
  const size_t heads = CountArg(info, 4, op, "heads");
  const DType type = DTypeArg(info, 5, op);
  const size_t tokens = positions.ElementLength();
  const size_t headDim = invFreq.ElementLength() * 2;
  if (headDim == 0) BadArgument(env, op, "invFreq is empty");
  if (x.ElementLength() != tokens * heads * headDim) BadArgument(env, op, "x.length must be positions.length * heads * 2 * invFreq.length");
  for (size_t t = 0; t < tokens; t++) {
    if (positions[t] < 0) BadArgument(env, op, "positions must be non-negative");
  }
  Napi::Float32Array out = Napi::Float32Array::New(env, x.ElementLength());
  Check(env, RunRope(type, x.Data(), out.Data(), positions.Data(), invFreq.Data(), static_cast<float>(attentionFactor), tokens, heads, headDim));
  return out;
}

// swiglu(gate: Float32Array, up: Float32Array, dtype) → Float32Array
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const char* op = "swiglu";
  Napi::Env env = info.Env();
  Napi::Float32Array gate = F32Arg(info, 0, op, "gate");
  Napi::Float32Array up = F32Arg(info, 1, op, "up");
  const DType type = DTypeArg(info, 2, op);
  if (gate.ElementLength() != up.ElementLength()) BadArgument(env, op, "gate and up must have the same length");
  Napi::Float32Array out = Napi::Float32Array::New(env, gate.ElementLength());
  Check(env, RunSwiglu(type, gate.Data(), up.Data(), out.Data(), gate.ElementLength()));
  return out;
}

Napi::Value F32ToBf16(const Napi::CallbackInfo& info) {
  Napi::Float32Array in = F32Arg(info, 0, "f32ToBf16", "x");
  Napi::Uint16Array out = Napi::Uint16Array::New(info.Env(), in.ElementLength());
  Check(info.Env(), RunF32ToBf16(in.Data(), out.Data(), in.ElementLength()));
  return out;
}

Napi::Value Bf16ToF32(const Napi::CallbackInfo& info) {
  Napi::Uint16Array in = U16Arg(info, 0, "bf16ToF32", "x");
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), in.ElementLength());
  Check(info.Env(), RunBf16ToF32(in.Data(), out.Data(), in.ElementLength()));
  return out;
}

Napi::Value F16ToBf16(const Napi::CallbackInfo& info) {
  Napi::Uint16Array in = U16Arg(info, 0, "f16ToBf16", "x");
  Napi::Uint16Array out = Napi::Uint16Array::New(info.Env(), in.ElementLength());
  Check(info.Env(), RunF16ToBf16(in.Data(), out.Data(), in.ElementLength()));
  return out;
}

// quantiseKeys / quantiseValues(rows: Float32Array [tokens, channels], tokens, channels, bits) → {codes, scaleZero}
Napi::Value Quantise(const Napi::CallbackInfo& info, QuantGrouping grouping, const char* op) {
  Napi::Env env = info.Env();
  Napi::Float32Array rows = F32Arg(info, 0, op, "rows");
  const size_t tokens = CountArg(info, 1, op, "tokens");
  const size_t channels = CountArg(info, 2, op, "channels");
  const int bits = BitsArg(info, 3, op);
  if (rows.ElementLength() != tokens * channels) BadArgument(env, op, "rows.length must be tokens * channels");
  Napi::Uint8Array codes = Napi::Uint8Array::New(env, PackedBytes(tokens * channels, bits));
  Napi::Uint16Array scaleZero = Napi::Uint16Array::New(env, 2 * ScaleZeroPairs(grouping, tokens, channels));
  Check(env, RunQuantise(grouping, rows.Data(), tokens, channels, bits, codes.Data(), scaleZero.Data()));
  Napi::Object block = Napi::Object::New(env);
  block.Set("codes", codes);
  block.Set("scaleZero", scaleZero);
  return block;
}

// dequantiseKeys / dequantiseValues(codes: Uint8Array, scaleZero: Uint16Array, tokens, channels, bits) → Float32Array
Napi::Value Dequantise(const Napi::CallbackInfo& info, QuantGrouping grouping, const char* op) {
  Napi::Env env = info.Env();
  auto codes = TypedArg<Napi::Uint8Array>(info, 0, op, "codes", napi_uint8_array, "Uint8Array");
  Napi::Uint16Array scaleZero = U16Arg(info, 1, op, "scaleZero");
  const size_t tokens = CountArg(info, 2, op, "tokens");
  const size_t channels = CountArg(info, 3, op, "channels");
  const int bits = BitsArg(info, 4, op);
  if (codes.ElementLength() != PackedBytes(tokens * channels, bits)) BadArgument(env, op, "codes.length does not match tokens, channels and bits");
  if (scaleZero.ElementLength() != 2 * ScaleZeroPairs(grouping, tokens, channels)) BadArgument(env, op, "scaleZero.length does not match tokens and channels");
  Napi::Float32Array out = Napi::Float32Array::New(env, tokens * channels);
  Check(env, RunDequantise(grouping, codes.Data(), scaleZero.Data(), tokens, channels, bits, out.Data()));
  return out;
}

Napi::Float32Array F32Field(Napi::Env env, const Napi::Object& o, const char* op, const char* key) {
  const Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) BadArgument(env, op, std::string(key) + " must be a Float32Array");
  return v.As<Napi::Float32Array>();
}

double NumberField(Napi::Env env, const Napi::Object& o, const char* op, const char* key) {
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) BadArgument(env, op, std::string(key) + " must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

int IntField(Napi::Env env, const Napi::Object& o, const char* op, const char* key, int min) {
  const double v = NumberField(env, o, op, key);
  if (std::floor(v) != v || v < min || v > 1e9) BadArgument(env, op, std::string(key) + " must be an integer >= " + std::to_string(min));
  return static_cast<int>(v);
}

// The q8 kernels' arguments, one object: {codes: Int8Array [n, ceil(k/32)*32], scales: Float32Array [n, ceil(k/32)],
// n, k, and for the GEMV x: Float32Array [rows, k], rows, accumulate?: Float32Array [rows, n]; for the
// dequantisation first, count}.
struct Q8Args {
  Napi::Int8Array codes;
  Napi::Float32Array scales, x, accumulate;
  size_t n = 0, k = 0, rows = 0, first = 0, count = 0;
};

// What a q8 op takes besides the table: activations (the GEMV), a row range (dequantisation), or nothing (a lookup).
enum class Q8Fields { kGemv, kRows, kTable };

Q8Args ParseQ8Args(const Napi::CallbackInfo& info, const char* op, Q8Fields fields) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) BadArgument(env, op, "expects an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  Q8Args a;
  const Napi::Value codes = o.Get("codes");
  if (!codes.IsTypedArray() || codes.As<Napi::TypedArray>().TypedArrayType() != napi_int8_array) BadArgument(env, op, "codes must be an Int8Array");
  a.codes = codes.As<Napi::Int8Array>();
  a.scales = F32Field(env, o, op, "scales");
  a.n = static_cast<size_t>(IntField(env, o, op, "n", 1));
  a.k = static_cast<size_t>(IntField(env, o, op, "k", 1));
  if (a.codes.ElementLength() != Q8CodeBytes(a.n, a.k)) BadArgument(env, op, "codes.length must be n * ceil(k / 32) * 32");
  if (a.scales.ElementLength() != a.n * Q8BlocksPerRow(a.k)) BadArgument(env, op, "scales.length must be n * ceil(k / 32)");
  if (fields == Q8Fields::kGemv) {
    a.x = F32Field(env, o, op, "x");
    a.rows = static_cast<size_t>(IntField(env, o, op, "rows", 1));
    if (a.x.ElementLength() != a.rows * a.k) BadArgument(env, op, "x.length must be rows * k");
    if (!o.Get("accumulate").IsUndefined()) {
      a.accumulate = F32Field(env, o, op, "accumulate");
      if (a.accumulate.ElementLength() != a.rows * a.n) BadArgument(env, op, "accumulate.length must be rows * n");
    }
  } else if (fields == Q8Fields::kRows) {
    a.first = static_cast<size_t>(IntField(env, o, op, "first", 0));
    a.count = static_cast<size_t>(IntField(env, o, op, "count", 1));
    if (a.first + a.count > a.n) BadArgument(env, op, "first + count must be at most n");
  }
  return a;
}

const float* OptionalData(const Napi::Float32Array& array) { return array.IsEmpty() ? nullptr : array.Data(); }

// The q4 kernels' arguments: as q8's, with codes: Uint8Array [n, ceil(k/32)*16] and scaleMin: Uint16Array of f16
// [n, ceil(k/32), 2] (q4Layout.h) in place of codes and scales.
struct Q4Args {
  Napi::Uint8Array codes;
  Napi::Uint16Array scaleMin;
  Napi::Float32Array x, accumulate;
  size_t n = 0, k = 0, rows = 0, first = 0, count = 0;
};

Q4Args ParseQ4Args(const Napi::CallbackInfo& info, const char* op, bool gemv) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) BadArgument(env, op, "expects an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  Q4Args a;
  const Napi::Value codes = o.Get("codes"), scaleMin = o.Get("scaleMin");
  if (!codes.IsTypedArray() || codes.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) BadArgument(env, op, "codes must be a Uint8Array");
  if (!scaleMin.IsTypedArray() || scaleMin.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array) BadArgument(env, op, "scaleMin must be a Uint16Array (f16 bits)");
  a.codes = codes.As<Napi::Uint8Array>();
  a.scaleMin = scaleMin.As<Napi::Uint16Array>();
  a.n = static_cast<size_t>(IntField(env, o, op, "n", 1));
  a.k = static_cast<size_t>(IntField(env, o, op, "k", 1));
  if (a.codes.ElementLength() != Q4CodeBytes(a.n, a.k)) BadArgument(env, op, "codes.length must be n * ceil(k / 32) * 16");
  if (a.scaleMin.ElementLength() != Q4ScaleMinCount(a.n, a.k)) BadArgument(env, op, "scaleMin.length must be n * ceil(k / 32) * 2");
  if (gemv) {
    a.x = F32Field(env, o, op, "x");
    a.rows = static_cast<size_t>(IntField(env, o, op, "rows", 1));
    if (a.x.ElementLength() != a.rows * a.k) BadArgument(env, op, "x.length must be rows * k");
    if (!o.Get("accumulate").IsUndefined()) {
      a.accumulate = F32Field(env, o, op, "accumulate");
      if (a.accumulate.ElementLength() != a.rows * a.n) BadArgument(env, op, "accumulate.length must be rows * n");
    }
  } else {
    a.first = static_cast<size_t>(IntField(env, o, op, "first", 0));
    a.count = static_cast<size_t>(IntField(env, o, op, "count", 1));
    if (a.first + a.count > a.n) BadArgument(env, op, "first + count must be at most n");
  }
  return a;
}

// q4Gemv(args) → Float32Array [rows, n], the GPU's decode GEMV.
Napi::Value Q4Gemv(const Napi::CallbackInfo& info) {
  const Q4Args a = ParseQ4Args(info, "q4Gemv", true);
  if (a.rows > static_cast<size_t>(kQ4GemvMaxRows)) BadArgument(info.Env(), "q4Gemv", "rows must be at most " + std::to_string(kQ4GemvMaxRows));
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), a.rows * a.n);
  Check(info.Env(), RunQ4Gemv(a.x.Data(), a.rows, a.codes.Data(), a.scaleMin.Data(), a.n, a.k, OptionalData(a.accumulate), out.Data()));
  return out;
}

// q4LinearReference(args) → Float64Array [rows, n], the C++ float64 reference (every build).
Napi::Value Q4LinearReferenceOp(const Napi::CallbackInfo& info) {
  const Q4Args a = ParseQ4Args(info, "q4LinearReference", true);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), a.rows * a.n);
  Q4LinearReference(a.x.Data(), a.rows, a.codes.Data(), a.scaleMin.Data(), a.n, a.k, OptionalData(a.accumulate), out.Data());
  return out;
}

// q4DequantiseRows(args) → Float32Array [count, k]: the GPU's bf16 tile, widened.
Napi::Value Q4DequantiseRows(const Napi::CallbackInfo& info) {
  const Q4Args a = ParseQ4Args(info, "q4DequantiseRows", false);
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), a.count * a.k);
  Check(info.Env(), RunQ4DequantiseRows(a.codes.Data(), a.scaleMin.Data(), a.n, a.k, a.first, a.count, out.Data()));
  return out;
}

// q4DequantiseReference(args) → Float64Array [count, k] (every build).
Napi::Value Q4DequantiseReferenceOp(const Napi::CallbackInfo& info) {
  const Q4Args a = ParseQ4Args(info, "q4DequantiseReference", false);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), a.count * a.k);
  Q4DequantiseReference(a.codes.Data(), a.scaleMin.Data(), a.k, a.first, a.count, out.Data());
  return out;
}

// q8Gemv(args) → Float32Array [rows, n], the GPU's decode GEMV.
Napi::Value Q8Gemv(const Napi::CallbackInfo& info) {
  const Q8Args a = ParseQ8Args(info, "q8Gemv", Q8Fields::kGemv);
  if (a.rows > static_cast<size_t>(kQ8GemvMaxRows)) BadArgument(info.Env(), "q8Gemv", "rows must be at most " + std::to_string(kQ8GemvMaxRows));
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), a.rows * a.n);
  Check(info.Env(), RunQ8Gemv(a.x.Data(), a.rows, a.codes.Data(), a.scales.Data(), a.n, a.k, OptionalData(a.accumulate), out.Data()));
  return out;
}

// q8LinearReference(args) → Float64Array [rows, n], the C++ float64 reference (every build).
Napi::Value Q8LinearReferenceOp(const Napi::CallbackInfo& info) {
  const Q8Args a = ParseQ8Args(info, "q8LinearReference", Q8Fields::kGemv);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), a.rows * a.n);
  Q8LinearReference(a.x.Data(), a.rows, a.codes.Data(), a.scales.Data(), a.n, a.k, OptionalData(a.accumulate), out.Data());
  return out;
}

// q8DequantiseRows(args) → Float32Array [count, k]: the GPU's bf16 tile, widened.
Napi::Value Q8DequantiseRows(const Napi::CallbackInfo& info) {
  const Q8Args a = ParseQ8Args(info, "q8DequantiseRows", Q8Fields::kRows);
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), a.count * a.k);
  Check(info.Env(), RunQ8DequantiseRows(a.codes.Data(), a.scales.Data(), a.n, a.k, a.first, a.count, out.Data()));
  return out;
}

// q8Embedding(table: {codes, scales, n, k}, tokens: Int32Array) → Float32Array [tokens, k]: the GPU's lookup of
// rows of a q8 table (the engine's embedding with --weights q8). Its reference is q8DequantiseReference's rows.
Napi::Value Q8Embedding(const Napi::CallbackInfo& info) {
  const char* op = "q8Embedding";
  const Q8Args a = ParseQ8Args(info, op, Q8Fields::kTable);
  auto tokens = TypedArg<Napi::Int32Array>(info, 1, op, "tokens", napi_int32_array, "Int32Array");
  for (size_t i = 0; i < tokens.ElementLength(); i++) {
    if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= a.n) BadArgument(info.Env(), op, "tokens must be in 0..n-1");
  }
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), tokens.ElementLength() * a.k);
  Check(info.Env(), RunQ8Embedding(a.codes.Data(), a.scales.Data(), a.n, a.k, tokens.Data(), tokens.ElementLength(), out.Data()));
  return out;
}

// q8DequantiseReference(args) → Float64Array [count, k] (every build).
Napi::Value Q8DequantiseReferenceOp(const Napi::CallbackInfo& info) {
  const Q8Args a = ParseQ8Args(info, "q8DequantiseReference", Q8Fields::kRows);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), a.count * a.k);
  Q8DequantiseReference(a.codes.Data(), a.scales.Data(), a.k, a.first, a.count, out.Data());
  return out;
}

// attention({q, kRing, vRing, ringRows, kRebuilt?, vRebuilt?, kMean?, vMean?, compressedTokens, invFreq, attentionFactor, start,
//            heads, kvHeads, headDim, slidingWindow, multiprocessors}) → Float32Array [queries, heads * headDim]
Napi::Value Attention(const Napi::CallbackInfo& info) {
  const char* op = "attention";
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) BadArgument(env, op, "expects an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  AttentionRun r;
  r.heads = IntField(env, o, op, "heads", 1);
  r.kvHeads = IntField(env, o, op, "kvHeads", 1);
  r.headDim = IntField(env, o, op, "headDim", 2);
  r.ringRows = IntField(env, o, op, "ringRows", 1);
  r.compressedTokens = IntField(env, o, op, "compressedTokens", 0);
  r.start = IntField(env, o, op, "start", 0);
  r.slidingWindow = IntField(env, o, op, "slidingWindow", 0);
  r.multiprocessors = IntField(env, o, op, "multiprocessors", 1);
  r.attentionFactor = NumberField(env, o, op, "attentionFactor");
  const size_t D = static_cast<size_t>(r.kvHeads) * r.headDim, Q = static_cast<size_t>(r.heads) * r.headDim;
  const Napi::Float32Array q = F32Field(env, o, op, "q"), kRing = F32Field(env, o, op, "kRing"), vRing = F32Field(env, o, op, "vRing");
  if (q.ElementLength() == 0 || q.ElementLength() % Q != 0) BadArgument(env, op, "q.length must be a multiple of heads * headDim");
  r.queries = static_cast<int>(q.ElementLength() / Q);
  if (kRing.ElementLength() != r.ringRows * D || vRing.ElementLength() != r.ringRows * D) BadArgument(env, op, "kRing and vRing must be ringRows * kvHeads * headDim");
  if (r.start + r.queries - r.compressedTokens > r.ringRows || r.compressedTokens > r.start) BadArgument(env, op, "the full-precision keys must fit the ring");
  const Napi::Value freq = o.Get("invFreq");
  if (!freq.IsTypedArray() || freq.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      freq.As<Napi::Float64Array>().ElementLength() != static_cast<size_t>(r.headDim / 2)) {
    BadArgument(env, op, "invFreq must be a Float64Array of headDim / 2");
  }
  r.q = q.Data();
  r.kRing = kRing.Data();
  r.vRing = vRing.Data();
  r.invFreq = freq.As<Napi::Float64Array>().Data();
  Napi::Float32Array kRebuilt, vRebuilt, kMean, vMean;
  if (r.compressedTokens > 0) {
    kRebuilt = F32Field(env, o, op, "kRebuilt");
    vRebuilt = F32Field(env, o, op, "vRebuilt");
    kMean = F32Field(env, o, op, "kMean");
    vMean = F32Field(env, o, op, "vMean");
    if (kRebuilt.ElementLength() != r.compressedTokens * D || vRebuilt.ElementLength() != r.compressedTokens * D || kMean.ElementLength() != D ||
        vMean.ElementLength() != D) {
      BadArgument(env, op, "kRebuilt/vRebuilt must be compressedTokens * kvDim and kMean/vMean kvDim");
    }
    r.kRebuilt = kRebuilt.Data();
    r.vRebuilt = vRebuilt.Data();
    r.kMean = kMean.Data();
    r.vMean = vMean.Data();
  }
  Napi::Float32Array out = Napi::Float32Array::New(env, q.ElementLength());
  Check(env, RunAttention(r, out.Data()));
  return out;
}

// The fused attention's arguments, one object: {q, kRing, vRing, ringRows, compressedTokens, invFreq, attentionFactor,
// start, heads, kvHeads, headDim, slidingWindow, multiprocessors, and with compressedTokens > 0: window, bits, kRank,
// vRank, pages: Uint8Array [compressedTokens / window, page bytes] (the engine's layout), kBasis [kvDim, kRank],
// vBasis [kvDim, vRank], kMean, vMean [kvDim]}; for the reference keysPerSplit (0 or absent: one pass).
struct FusedArgs {
  FusedAttentionInputs in;
  int multiprocessors = 1;
  int64_t keysPerSplit = 0;
  Napi::Float32Array q, kRing, vRing, kBasis, vBasis, kMean, vMean;
  Napi::Uint8Array pages;
  Napi::Float64Array invFreq;
};

void ParseFusedArgs(const Napi::CallbackInfo& info, const char* op, FusedArgs& a) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) BadArgument(env, op, "expects an object");
  const Napi::Object o = info[0].As<Napi::Object>();
  FusedAttentionInputs& in = a.in;
  in.heads = IntField(env, o, op, "heads", 1);
  in.kvHeads = IntField(env, o, op, "kvHeads", 1);
  in.headDim = IntField(env, o, op, "headDim", 2);
  in.ringRows = IntField(env, o, op, "ringRows", 1);
  in.compressedTokens = IntField(env, o, op, "compressedTokens", 0);
  in.start = IntField(env, o, op, "start", 0);
  in.slidingWindow = IntField(env, o, op, "slidingWindow", 0);
  in.attentionFactor = NumberField(env, o, op, "attentionFactor");
  a.multiprocessors = IntField(env, o, op, "multiprocessors", 1);
  if (!o.Get("keysPerSplit").IsUndefined()) a.keysPerSplit = IntField(env, o, op, "keysPerSplit", 0);
  if (a.keysPerSplit % kFusedAttentionKeyTile != 0) BadArgument(env, op, "keysPerSplit must be whole tiles of " + std::to_string(kFusedAttentionKeyTile));
  if (in.heads % in.kvHeads != 0 || in.headDim % 2 != 0 || in.headDim > 256) BadArgument(env, op, "heads must be a multiple of kvHeads, headDim even and at most 256");
  const size_t D = static_cast<size_t>(in.kvHeads) * in.headDim, Q = static_cast<size_t>(in.heads) * in.headDim;
  a.q = F32Field(env, o, op, "q");
  a.kRing = F32Field(env, o, op, "kRing");
  a.vRing = F32Field(env, o, op, "vRing");
  if (a.q.ElementLength() == 0 || a.q.ElementLength() % Q != 0) BadArgument(env, op, "q.length must be a multiple of heads * headDim");
  in.queries = static_cast<int>(a.q.ElementLength() / Q);
  if (a.kRing.ElementLength() != in.ringRows * D || a.vRing.ElementLength() != in.ringRows * D) BadArgument(env, op, "kRing and vRing must be ringRows * kvHeads * headDim");
  if (in.start + in.queries - in.compressedTokens > in.ringRows || in.compressedTokens > in.start) BadArgument(env, op, "the full-precision keys must fit the ring");
  const Napi::Value freq = o.Get("invFreq");
  if (!freq.IsTypedArray() || freq.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      freq.As<Napi::Float64Array>().ElementLength() != static_cast<size_t>(in.headDim / 2)) {
    BadArgument(env, op, "invFreq must be a Float64Array of headDim / 2");
  }
  a.invFreq = freq.As<Napi::Float64Array>();
  in.q = a.q.Data();
  in.kRing = a.kRing.Data();
  in.vRing = a.vRing.Data();
  in.invFreq = a.invFreq.Data();
  if (in.compressedTokens == 0) return;
  in.window = IntField(env, o, op, "window", 1);
  in.bits = IntField(env, o, op, "bits", 2);
  in.kRank = IntField(env, o, op, "kRank", 1);
  in.vRank = IntField(env, o, op, "vRank", 1);
  if (in.bits != 16 && in.bits != 8 && in.bits != 4 && in.bits != 2) BadArgument(env, op, "bits must be 16, 8, 4 or 2");
  if (in.compressedTokens % in.window != 0) BadArgument(env, op, "compressedTokens must be whole blocks of window");
  const Napi::Value pages = o.Get("pages");
  if (!pages.IsTypedArray() || pages.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) BadArgument(env, op, "pages must be a Uint8Array");
  a.pages = pages.As<Napi::Uint8Array>();
  const size_t pageBytes = PlanPage(in.window, in.kRank, in.vRank, in.bits).bytes;
  if (a.pages.ElementLength() != static_cast<size_t>(in.compressedTokens / in.window) * pageBytes) {
    BadArgument(env, op, "pages.length must be compressedTokens / window pages of " + std::to_string(pageBytes) + " bytes");
  }
  a.kBasis = F32Field(env, o, op, "kBasis");
  a.vBasis = F32Field(env, o, op, "vBasis");
  a.kMean = F32Field(env, o, op, "kMean");
  a.vMean = F32Field(env, o, op, "vMean");
  if (a.kBasis.ElementLength() != D * in.kRank || a.vBasis.ElementLength() != D * in.vRank) BadArgument(env, op, "kBasis/vBasis must be kvDim * kRank / vRank");
  if (a.kMean.ElementLength() != D || a.vMean.ElementLength() != D) BadArgument(env, op, "kMean/vMean must be kvDim");
  in.pages = a.pages.Data();
  in.kBasis = a.kBasis.Data();
  in.vBasis = a.vBasis.Data();
  in.kMean = a.kMean.Data();
  in.vMean = a.vMean.Data();
}

// fusedAttention(args) → Float32Array [queries, heads * headDim]: the GPU kernel and its merge.
Napi::Value FusedAttention(const Napi::CallbackInfo& info) {
  FusedArgs a;
  ParseFusedArgs(info, "fusedAttention", a);
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), a.q.ElementLength());
  Check(info.Env(), RunFusedAttention(a.in, a.multiprocessors, out.Data()));
  return out;
}

// fusedAttentionReference(args) → Float64Array [queries, heads * headDim] (every build).
Napi::Value FusedAttentionReferenceOp(const Napi::CallbackInfo& info) {
  FusedArgs a;
  ParseFusedArgs(info, "fusedAttentionReference", a);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), a.q.ElementLength());
  FusedAttentionReference(a.in, a.keysPerSplit, out.Data());
  return out;
}

// fusedPrefillAttention(args) → Float32Array [queries, heads * headDim]: the GPU kernel, one launch.
Napi::Value FusedPrefillAttention(const Napi::CallbackInfo& info) {
  FusedArgs a;
  ParseFusedArgs(info, "fusedPrefillAttention", a);
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), a.q.ElementLength());
  Check(info.Env(), RunFusedPrefillAttention(a.in, out.Data()));
  return out;
}

// fusedPrefillAttentionReference(args & {rowsPerTile}) → Float64Array [queries, heads * headDim] (every build);
// rowsPerTile defaults to the kernel's kFusedPrefillRowTile.
Napi::Value FusedPrefillAttentionReferenceOp(const Napi::CallbackInfo& info) {
  const char* op = "fusedPrefillAttentionReference";
  FusedArgs a;
  ParseFusedArgs(info, op, a);
  const Napi::Object o = info[0].As<Napi::Object>();
  const int rowsPerTile = o.Get("rowsPerTile").IsUndefined() ? kFusedPrefillRowTile : IntField(info.Env(), o, op, "rowsPerTile", 1);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), a.q.ElementLength());
  FusedPrefillAttentionReference(a.in, rowsPerTile, out.Data());
  return out;
}

// sample(logits: Float32Array, {greedy, temperature, topK, topP, u}) → token id
Napi::Value Sample(const Napi::CallbackInfo& info) {
  const char* op = "sample";
  Napi::Env env = info.Env();
  Napi::Float32Array logits = F32Arg(info, 0, op, "logits");
  if (info.Length() < 2 || !info[1].IsObject()) BadArgument(env, op, "expects (logits, {greedy, temperature, topK, topP, u})");
  const Napi::Object o = info[1].As<Napi::Object>();
  const Napi::Value greedy = o.Get("greedy");
  if (!greedy.IsBoolean()) BadArgument(env, op, "greedy must be a boolean");
  int32_t token = -1;
  Check(env, RunSample(logits.Data(), static_cast<int>(logits.ElementLength()), greedy.As<Napi::Boolean>().Value(),
                       static_cast<float>(NumberField(env, o, op, "temperature")), IntField(env, o, op, "topK", 0),
                       static_cast<float>(NumberField(env, o, op, "topP")), NumberField(env, o, op, "u"), &token));
  return Napi::Number::New(env, token);
}

}  // namespace

Napi::Object KernelOps(Napi::Env env) {
  Napi::Object kernels = Napi::Object::New(env);
  kernels.Set("rmsNorm", Napi::Function::New(env, RmsNorm, "rmsNorm"));
  kernels.Set("attention", Napi::Function::New(env, Attention, "attention"));
  kernels.Set("sample", Napi::Function::New(env, Sample, "sample"));
  kernels.Set("fusedAttention", Napi::Function::New(env, FusedAttention, "fusedAttention"));
  kernels.Set("fusedAttentionReference", Napi::Function::New(env, FusedAttentionReferenceOp, "fusedAttentionReference"));
  kernels.Set("fusedPrefillAttention", Napi::Function::New(env, FusedPrefillAttention, "fusedPrefillAttention"));
  kernels.Set("fusedPrefillAttentionReference", Napi::Function::New(env, FusedPrefillAttentionReferenceOp, "fusedPrefillAttentionReference"));
  kernels.Set("q8Gemv", Napi::Function::New(env, Q8Gemv, "q8Gemv"));
  kernels.Set("q8DequantiseRows", Napi::Function::New(env, Q8DequantiseRows, "q8DequantiseRows"));
  kernels.Set("q8LinearReference", Napi::Function::New(env, Q8LinearReferenceOp, "q8LinearReference"));
  kernels.Set("q8Embedding", Napi::Function::New(env, Q8Embedding, "q8Embedding"));
  kernels.Set("q8DequantiseReference", Napi::Function::New(env, Q8DequantiseReferenceOp, "q8DequantiseReference"));
  kernels.Set("q4Gemv", Napi::Function::New(env, Q4Gemv, "q4Gemv"));
  kernels.Set("q4DequantiseRows", Napi::Function::New(env, Q4DequantiseRows, "q4DequantiseRows"));
  kernels.Set("q4LinearReference", Napi::Function::New(env, Q4LinearReferenceOp, "q4LinearReference"));
  kernels.Set("q4DequantiseReference", Napi::Function::New(env, Q4DequantiseReferenceOp, "q4DequantiseReference"));
  kernels.Set("rope", Napi::Function::New(env, Rope, "rope"));
  kernels.Set("swiglu", Napi::Function::New(env, Swiglu, "swiglu"));
  kernels.Set("f32ToBf16", Napi::Function::New(env, F32ToBf16, "f32ToBf16"));
  kernels.Set("bf16ToF32", Napi::Function::New(env, Bf16ToF32, "bf16ToF32"));
  kernels.Set("f16ToBf16", Napi::Function::New(env, F16ToBf16, "f16ToBf16"));
  kernels.Set("quantiseKeys", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Quantise(info, QuantGrouping::kKeysPerChannel, "quantiseKeys"); }, "quantiseKeys"));
  kernels.Set("quantiseValues", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Quantise(info, QuantGrouping::kValuesPerTokenGroup, "quantiseValues"); }, "quantiseValues"));
  kernels.Set("dequantiseKeys", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Dequantise(info, QuantGrouping::kKeysPerChannel, "dequantiseKeys"); }, "dequantiseKeys"));
  kernels.Set("dequantiseValues", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Dequantise(info, QuantGrouping::kValuesPerTokenGroup, "dequantiseValues"); }, "dequantiseValues"));
  return kernels;
}

}  // namespace cskv
