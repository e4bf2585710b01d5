// The ONNX graphs of one decoder layer and of the output head, built from a layer's weights.
//
// A layer graph takes the chunk's hidden states and the cache of that layer as inputs and returns the new hidden
// states plus the chunk's pre-RoPE keys/values (and their compressed features) for the cache to keep:
//   x [T,H], cos_q/sin_q [T,hd], cos_k/sin_k [S,hd], mask [T,S], k_full/v_full [Sf,D], (CSKV) c_k [Sc,rk], c_v [Sc,rv]
//   S = Sc + Sf + T: compressed history, full-precision history, the chunk itself.
// Compressed keys are rebuilt (mean + c U^T) and rotated like the others; compressed values are never rebuilt
// per token: the attention weights are applied in the rank-r space and up-projected once per query (cskv.md).
import { GraphBuilder } from './graphBuilder';
import type { ModelConfig } from '../model/config';

export interface LayerWeights {
  inputNorm: Float32Array;
  postNorm: Float32Array;
  q: Float32Array; k: Float32Array; v: Float32Array; o: Float32Array; // [out, in] as stored
  qBias?: Float32Array; kBias?: Float32Array; vBias?: Float32Array; oBias?: Float32Array;
  gate: Float32Array; up: Float32Array; down: Float32Array;
  gateBias?: Float32Array; upBias?: Float32Array; downBias?: Float32Array;
}

/** One branch's factors of one layer, groups already expanded to a block-diagonal basis [D, r]. */
export interface Factor {
  basis: Float32Array;
  mean: Float32Array;
  rank: number;
}

export interface LayerFactors {
  k: Factor;
  v: Factor;
}

export function buildLayerGraph(config: ModelConfig, w: LayerWeights, factors: LayerFactors | undefined): Uint8Array {
  const { hiddenSize: H, heads, kvHeads, headDim: hd, kvDim: D, intermediateSize: I } = config;
  const nRep = heads / kvHeads;
  const g = new GraphBuilder('decoder_layer');

  const x = g.input('x', ['T', H]);
  const cosQ = g.input('cos_q', ['T', hd]);
  const sinQ = g.input('sin_q', ['T', hd]);
  const cosK = g.input('cos_k', ['S', hd]);
  const sinK = g.input('sin_k', ['S', hd]);
  const mask = g.input('mask', ['T', 'S']);
  const kFull = g.input('k_full', ['Sf', D]);
  const vFull = g.input('v_full', ['Sf', D]);
  const cK = factors ? g.input('c_k', ['Sc', factors.k.rank]) : undefined;
  const cV = factors ? g.input('c_v', ['Sc', factors.v.rank]) : undefined;

  const rmsNorm = (input: string, weight: Float32Array, name: string): string => {
    const meanSquare = g.op('ReduceMean', [g.op('Mul', [input, input])], { axes: [-1], keepdims: 1 });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(config.rmsNormEps)])])]);
    return g.op('Mul', [g.op('Mul', [input, inv]), g.weight(name, weight, [weight.length])]);
  };
  // y = input W^T + b with W as stored ([out, in]): Gemm transposes on the fly, so no copy of the weight is made.
  const linear = (input: string, weight: Float32Array, outFeatures: number, inFeatures: number, name: string, bias?: Float32Array): string => {
    const inputs = [input, g.weight(name, weight, [outFeatures, inFeatures])];
    if (bias) inputs.push(g.weight(`${name}_bias`, bias, [outFeatures]));
    return g.op('Gemm', inputs, { transB: 1 });
  };
  const rotateHalf = (t: string): string => {
    const [first, second] = g.node('Split', [t, g.ints([hd / 2, hd / 2])], [`${t}_a`, `${t}_b`], { axis: -1 });
    return g.op('Concat', [g.op('Neg', [second!]), first!], { axis: -1 });
  };
  const rope = (t: string, cos: string, sin: string): string =>
    g.op('Add', [g.op('Mul', [t, cos]), g.op('Mul', [rotateHalf(t), sin])]);

  // Attention projections.
  const h = rmsNorm(x, w.inputNorm, 'input_norm');
  const q = linear(h, w.q, heads * hd, H, 'q_proj', w.qBias);
  const k = linear(h, w.k, D, H, 'k_proj', w.kBias);
  const v = linear(h, w.v, D, H, 'v_proj', w.vBias);
  g.output(k, 'k_new', ['T', D]);
  g.output(v, 'v_new', ['T', D]);

  let keys = g.op('Concat', [kFull, k], { axis: 0 });
  if (factors && cK) {
    const kMean = g.weight('k_mean', factors.k.mean, [D]);
    const vMean = g.weight('v_mean', factors.v.mean, [D]);
    const kBasis = g.weight('k_basis', factors.k.basis, [D, factors.k.rank]);
    const vBasis = g.weight('v_basis', factors.v.basis, [D, factors.v.rank]);
    g.output(g.op('MatMul', [g.op('Sub', [k, kMean]), kBasis]), 'c_k_new', ['T', factors.k.rank]);
    g.output(g.op('MatMul', [g.op('Sub', [v, vMean]), vBasis]), 'c_v_new', ['T', factors.v.rank]);
    const rebuilt = g.op('Add', [g.op('Gemm', [cK, kBasis], { transB: 1 }), kMean]);
    keys = g.op('Concat', [rebuilt, keys], { axis: 0 });
  }

  // [T, heads*hd] -> [kvHeads, nRep, T, hd]; query head j*nRep+i attends with kv head j (transformers' repeat_kv).
  const qHeads = g.op('Transpose', [g.op('Reshape', [q, g.ints([-1, kvHeads, nRep, hd])])], { perm: [1, 2, 0, 3] });
  const qRot = g.op('Mul', [rope(qHeads, cosQ, sinQ), g.scalar(1 / Math.sqrt(hd))]);
  const kHeads = g.op('Transpose', [g.op('Reshape', [keys, g.ints([-1, kvHeads, hd])])], { perm: [1, 0, 2] });
  const kRot = g.op('Unsqueeze', [g.op('Transpose', [rope(kHeads, cosK, sinK)], { perm: [0, 2, 1] }), g.ints([1])]);
  const scores = g.op('Add', [g.op('MatMul', [qRot, kRot]), mask]);
  const probs = g.op('Softmax', [scores], { axis: -1 });

  const toHeads = (t: string): string =>
    g.op('Unsqueeze', [g.op('Transpose', [g.op('Reshape', [t, g.ints([-1, kvHeads, hd])])], { perm: [1, 0, 2] }), g.ints([1])]);
  const values = toHeads(g.op('Concat', [vFull, v], { axis: 0 }));
  let attn: string;
  if (factors && cV) {
    const compressedCount = g.op('Slice', [g.op('Shape', [cK!]), g.ints([0]), g.ints([1])]);
    const pCompressed = g.op('Slice', [probs, g.ints([0]), compressedCount, g.ints([-1])]);
    const pFull = g.op('Slice', [probs, compressedCount, g.ints([2 ** 62]), g.ints([-1])]);
    // Per kv head: U_v rows of that head, as [kvHeads, 1, rv, hd], and its mean as [kvHeads, 1, 1, hd].
    const upBasis = headMajorBasis(factors.v, kvHeads, hd);
    const upProjection = g.weight('v_up', upBasis, [kvHeads, 1, factors.v.rank, hd]);
    const meanHeads = g.weight('v_mean_heads', factors.v.mean, [kvHeads, 1, 1, hd]);
    // One zero row/column appended to both sides, so the product's inner axis is never empty: onnxruntime's
    // WebGPU provider crashes (SIGSEGV) on a MatMul over a zero-length axis, i.e. while the compressed branch is
    // empty (test/runtime/webgpuCrash.test.ts). The extra term adds 0.
    const inRankSpace = g.op('MatMul', [g.op('Pad', [pCompressed, g.ints([0, 0, 0, 0, 0, 0, 0, 1])]), g.op('Pad', [cV, g.ints([0, 0, 1, 0])])]);
    const compressedOut = g.op('Add', [
      g.op('MatMul', [inRankSpace, upProjection]),
      // The compressed weights' total, as 1 - the full ones' (never an empty reduction: onnxruntime gets the
      // shape of a ReduceSum over a zero-length axis wrong while the compressed branch is still empty).
      g.op('Mul', [g.op('Sub', [g.scalar(1), g.op('ReduceSum', [pFull, g.ints([-1])], { keepdims: 1 })]), meanHeads]),
    ]);
    attn = g.op('Add', [g.op('MatMul', [pFull, values]), compressedOut]);
  } else {
    attn = g.op('MatMul', [probs, values]);
  }
  const merged = g.op('Reshape', [g.op('Transpose', [attn], { perm: [2, 0, 1, 3] }), g.ints([-1, heads * hd])]);
  const x1 = g.op('Add', [x, linear(merged, w.o, H, heads * hd, 'o_proj', w.oBias)]);

  // SwiGLU MLP.
  const h2 = rmsNorm(x1, w.postNorm, 'post_norm');
  const gate = linear(h2, w.gate, I, H, 'gate_proj', w.gateBias);
  const up = linear(h2, w.up, I, H, 'up_proj', w.upBias);
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
  g.output(g.op('Add', [x1, linear(act, w.down, H, I, 'down_proj', w.downBias)]), 'y', ['T', H]);
  return g.finish();
}

/** U [D, r] (D = kvHeads*hd, row-major) -> [kvHeads, r, hd]: each head's rows, transposed. */
function headMajorBasis(f: Factor, kvHeads: number, hd: number): Float32Array {
  const out = new Float32Array(kvHeads * f.rank * hd);
  for (let head = 0; head < kvHeads; head++) {
    for (let c = 0; c < hd; c++) {
      const row = (head * hd + c) * f.rank;
      for (let j = 0; j < f.rank; j++) out[(head * f.rank + j) * hd + c] = f.basis[row + j]!;
    }
  }
  return out;
}

/** Final norm and the output projection, for the rows whose logits are wanted. */
export function buildHeadGraph(config: ModelConfig, finalNorm: Float32Array, lmHead: Float32Array): Uint8Array {
  const { hiddenSize: H, vocabSize: V } = config;
  const g = new GraphBuilder('lm_head');
  const x = g.input('x', ['N', H]);
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(config.rmsNormEps)])])]);
  const normed = g.op('Mul', [g.op('Mul', [x, inv]), g.weight('norm', finalNorm, [H])]);
  g.output(g.op('Gemm', [normed, g.weight('lm_head', lmHead, [V, H])], { transB: 1 }), 'logits', ['N', V]);
  return g.finish();
}
