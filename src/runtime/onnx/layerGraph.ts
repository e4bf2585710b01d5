// The ONNX graphs of one decoder layer and of the output head, built from a layer's weights.
//
// A layer graph takes the chunk's hidden states and the cache of that layer as inputs and returns the new hidden
// states plus the chunk's keys/values (and their compressed features) for the cache to keep:
//   x [T,H], cos_q/sin_q [T,hd], mask [T,S], k_full/v_full [Sf,D], (CSKV) c_k [Sc,rk], c_v [Sc,rv] (fp16 or f32),
//   cos_k/sin_k for the positions the graph rotates: [Sc,hd] when the cache keeps keys rotated (absent without
//   CSKV), else [S,hd];  S = Sc + Sf + T: compressed history, full-precision history, the chunk itself.
// Outputs: y, k_new/v_new (pre-RoPE), k_rot_new (the chunk's keys after RoPE, when the cache keeps keys rotated),
// c_k_new/c_v_new (CSKV). With rotated keys a step rotates only its own keys and the compressed ones it rebuilds.
// With the head-major full branch (`fullLayout: 'heads'`, CPU, rotated keys only) k_full/v_full give way to the
// cache's own buffers, read in place (f32, or fp16 widened as read): k_cache [kvHeads, hd, C] (rotated keys,
// transposed), v_cache [kvHeads, C, hd],
// of which only the held slots count (the masks hide the rest: mask_cache [R, C], mask_compressed [R, Sc + 1],
// mask_chunk [R, T], R = heads/kvHeads * T rows, or one row for all where every row is the same, see
// headMajorMasks.ts); the softmax is split over the cache, the
// compressed keys and the chunk, so no step copies the history or joins scores. The compressed keys are
// rebuilt head-major [kvHeads, Sc + 1, hd] by one batched product (a ones column of the features picks the mean)
// and turned by RotaryEmbedding from cos_kc/sin_kc [Sc + 1, hd/2] in place of cos_k/sin_k. The chunk's rows for
// the cache come out as k_append (rotated) and v_append, in the buffers' type.
// Compressed keys are rebuilt (mean + c U^T: 2·r·D FLOPs per token) and rotated; compressed values are never
// rebuilt per token: the attention weights are applied in the rank-r space and up-projected once per query (docs/cskv.md).
import { type BlockQuantised, type RowReader, quantiseBlockwise } from './blockQuantizer';
import { GraphBuilder, type OnnxGraph } from './graphBuilder';
import type { ModelConfig } from '../model/config';
import type { WeightFormat } from '../model/weightFormat';
import type { Factor, LayerFactors } from '../cskvFile';
import { type QuantisedBits, dequantisedFeatures } from './packedCodes';
import { floatToHalfBits } from '../half';

/** ONNX element types for Cast. */
const FLOAT32 = 1, FLOAT16 = 10;
/** The rows of the head-major masks of the cache and the compressed keys: R, or one that the graph's Add broadcasts. */
const MASK_ROWS = 'R_or_1';

function toHalfBits(values: Float32Array): Uint16Array {
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = floatToHalfBits(values[i]!);
  return bits;
}

/** A linear weight [out, in] as stored: f32, or already in 8-bit blocks (a GGUF Q8_0 file's own values, for q8). */
export type LinearWeight = Float32Array | BlockQuantised;

export interface LayerWeights {
  inputNorm: Float32Array;
  postNorm: Float32Array;
  q: LinearWeight; k: LinearWeight; v: LinearWeight; o: LinearWeight;
  qBias?: Float32Array; kBias?: Float32Array; vBias?: Float32Array; oBias?: Float32Array;
  gate: LinearWeight; up: LinearWeight; down: LinearWeight;
  gateBias?: Float32Array; upBias?: Float32Array; downBias?: Float32Array;
}

/**
 * y = input W^T + b with W as stored ([out, in]). f32: Gemm transposes on the fly, so no copy of the weight is
 * made. q8/q4: MatMulNBits over blocks of 32 at accuracy level 4 (activations quantised to int8 per block, int8
 * dot products): level 0 computes in f32 and was measured 100× slower on the output head. Weights already in 8-bit
 * blocks are taken as they are (q8 only).
 */
function linear(g: GraphBuilder, format: WeightFormat, input: string, weight: LinearWeight | RowReader, outFeatures: number, inFeatures: number, name: string, bias?: Float32Array): string {
  const given = typeof weight === 'function' || weight instanceof Float32Array ? undefined : weight;
  if (given && (format !== 'q8' || given.bits !== 8 || given.n !== outFeatures || given.k !== inFeatures)) {
    throw new Error(`${name}: ${given.bits}-bit blocks [${given.n}, ${given.k}] given for ${format} weights [${outFeatures}, ${inFeatures}]`);
  }
  if (format === 'f32') {
    if (!(weight instanceof Float32Array)) throw new Error(`${name}: f32 weights are given whole, as f32`);
    const inputs = [input, g.weight(name, weight, [outFeatures, inFeatures])];
    if (bias) inputs.push(g.weight(`${name}_bias`, bias, [outFeatures]));
    return g.op('Gemm', inputs, { transB: 1 });
  }
  if (format === 'f16') {
    // Half the bytes of f32; the product runs in half precision (the adapter's shader-f16), activations stay f32
    // between the linear layers (norms, attention and the cache are unchanged).
    if (!(weight instanceof Float32Array)) throw new Error(`${name}: f16 weights are given whole, as f32`);
    const inputs = [g.op('Cast', [input], { to: FLOAT16 }), g.halfWeight(name, toHalfBits(weight), [outFeatures, inFeatures])];
    if (bias) inputs.push(g.halfWeight(`${name}_bias`, toHalfBits(bias), [outFeatures]));
    return g.op('Cast', [g.op('Gemm', inputs, { transB: 1 })], { to: FLOAT32 });
  }
  const q = given ?? quantiseBlockwise(weight as Float32Array | RowReader, outFeatures, inFeatures, format === 'q8' ? 8 : 4);
  const codes = g.bytesWeight(`${name}_codes`, q.codes, [q.n, q.blocksPerRow, q.codes.length / (q.n * q.blocksPerRow)]);
  const scales = g.weight(`${name}_scales`, q.scales, [q.scales.length]);
  // The bias is the operator's sixth input (after zero points and g_idx, absent): no Add node.
  const inputs = [input, codes, scales];
  if (bias) inputs.push('', '', g.weight(`${name}_bias`, bias, [outFeatures]));
  return g.contribOp('MatMulNBits', inputs, { K: q.k, N: q.n, bits: q.bits, block_size: q.blockSize, accuracy_level: 4 });
}

/**
 * Linear weights with the same input stacked by rows ([sum of outs, in]), so that one product replaces several:
 * f32 rows copied, 8-bit blocks joined as they are (each row's blocks are its own, so quantising the stack equals
 * stacking the quantised parts). Biases are stacked alike, zeros standing in for a part without one.
 */
function stackRows(parts: readonly LinearWeight[], outs: readonly number[], inFeatures: number, biases: readonly (Float32Array | undefined)[]): { weight: LinearWeight; bias?: Float32Array } {
  const total = outs.reduce((a, b) => a + b, 0);
  let bias: Float32Array | undefined;
  if (biases.some((b) => b !== undefined)) {
    bias = new Float32Array(total);
    let at = 0;
    biases.forEach((b, i) => { if (b) bias!.set(b, at); at += outs[i]!; });
  }
  if (parts.every((p) => p instanceof Float32Array)) {
    const weight = new Float32Array(total * inFeatures);
    let at = 0;
    for (const p of parts as Float32Array[]) { weight.set(p, at); at += p.length; }
    return { weight, bias };
  }
  // Some parts came as 8-bit blocks (q8 only; linear() checks): the others are quantised alike, then joined.
  const blocks = parts.map((p, i) => (p instanceof Float32Array ? quantiseBlockwise(p, outs[i]!, inFeatures, 8) : p));
  const codes = new Uint8Array(blocks.reduce((a, b) => a + b.codes.length, 0));
  const scales = new Float32Array(blocks.reduce((a, b) => a + b.scales.length, 0));
  let codesAt = 0, scalesAt = 0;
  for (const b of blocks) {
    if (b.bits !== blocks[0]!.bits || b.blockSize !== blocks[0]!.blockSize || b.k !== inFeatures) throw new Error('stacked weights differ in their blocks');
    codes.set(b.codes, codesAt); codesAt += b.codes.length;
    scales.set(b.scales, scalesAt); scalesAt += b.scales.length;
  }
  return { weight: { ...blocks[0]!, n: total, codes, scales }, bias };
}

/** Multiplies the first `rows` rows of stacked weights [n, inFeatures] (stackRows' own copy) and of their bias by `factor`. */
function scaleFirstRows(stacked: { weight: LinearWeight; bias?: Float32Array }, rows: number, inFeatures: number, factor: number): void {
  const { weight, bias } = stacked;
  if (weight instanceof Float32Array) {
    for (let i = 0; i < rows * inFeatures; i++) weight[i]! *= factor;
  } else {
    for (let i = 0; i < rows * weight.blocksPerRow; i++) weight.scales[i]! *= factor;
  }
  if (bias) for (let i = 0; i < rows; i++) bias[i]! *= factor;
}

export interface LayerGraphOptions {
  weights: WeightFormat;
  /** The cache keeps full-branch keys after RoPE (possible when the rotation does not depend on the length). */
  keysRotated: boolean;
  /**
   * How the compressed features arrive: fp16 rows read in place (16 bits), f32 rows (widened or dequantised by the
   * host), or 8/4/2-bit codes packed in f32 with their scales, dequantised here (packedCodes.ts: the WebGPU
   * backend keeps the quantised branch on the device in that form).
   */
  compressedType: 'float16' | 'float32' | { codes: QuantisedBits; window: number };
  /**
   * Also output the full branch with this step's tokens appended (`k_full_next`, `v_full_next`: the next step's
   * `k_full`/`v_full` before any block leaves it), and with CSKV its tokens' compressed features (inputs
   * `c_k_pending`/`c_v_pending`, outputs `c_k_pending_next`/`c_v_pending_next`), so a GPU backend can keep them
   * on the device and feed them back.
   */
  fullBranchOutputs?: boolean;
  /** The full branch as token-major rows (k_full/v_full) or as the cache's head-major buffers (k_cache/v_cache). */
  fullLayout?: 'rows' | 'heads';
  /** The head-major buffers' element type; the chunk's rows for them (k_append/v_append) come out in it too. */
  fullType?: 'float32' | 'float16';
}

export function buildLayerGraph(config: ModelConfig, w: LayerWeights, factors: LayerFactors | undefined, options: LayerGraphOptions): OnnxGraph {
  return buildLayersGraph(config, 1, () => ({ weights: w, factors }), options);
}

/** A layer's inputs and outputs in a graph of `layers` layers: `l<j>_k_cache`, ...; unprefixed in a graph of one. */
export function layerPrefix(j: number, layers: number): string {
  return layers === 1 ? '' : `l${j}_`;
}

/**
 * Consecutive decoder layers in one graph (one session run for all of them): layer j's cache inputs and outputs are
 * named with layerPrefix(j), the angles and masks are shared, x goes in to the first and y comes out of the last.
 * Each layer's weights are asked for as its nodes are added (`layer(j)`), so quantised ones are read one at a time.
 */
export function buildLayersGraph(config: ModelConfig, layers: number, layer: (j: number) => { weights: LayerWeights; factors?: LayerFactors }, options: LayerGraphOptions): OnnxGraph {
  const g = new GraphBuilder(layers === 1 ? 'decoder_layer' : 'decoder_layers');
  let x = g.input('x', ['T', config.hiddenSize]);
  for (let j = 0; j < layers; j++) {
    const { weights, factors } = layer(j);
    const input = x;
    x = g.scoped(layerPrefix(j, layers), () => addLayer(g, config, weights, factors, options, input));
  }
  g.output(x, 'y', ['T', config.hiddenSize]);
  return g.finish();
}

/** One decoder layer's nodes from its input rows x [T, H]; returns its output rows. */
function addLayer(g: GraphBuilder, config: ModelConfig, w: LayerWeights, factors: LayerFactors | undefined, options: LayerGraphOptions, x: string): string {
  const { hiddenSize: H, heads, kvHeads, headDim: hd, kvDim: D, intermediateSize: I } = config;
  const { weights: format, keysRotated } = options;
  const nRep = heads / kvHeads;
  const cosQ = g.sharedInput('cos_q', ['T', hd]);
  const sinQ = g.sharedInput('sin_q', ['T', hd]);
  const rotatedCount = keysRotated ? 'Sc' : 'S';
  const headMajor = options.fullLayout === 'heads';
  if (headMajor && (!keysRotated || options.fullBranchOutputs)) throw new Error('the head-major full branch holds rotated keys and stays in JS memory');
  // Head-major, the compressed keys are turned by RotaryEmbedding from their own tables cos_kc/sin_kc [Sc + 1, hd/2]
  // (positions 0..Sc; the last row, the padding key's, 0: see below).
  const needsCosK = !keysRotated || factors !== undefined;
  const cosK = needsCosK ? (headMajor ? g.sharedInput('cos_kc', ['Sc1', hd / 2]) : g.sharedInput('cos_k', [rotatedCount, hd])) : '';
  const sinK = needsCosK ? (headMajor ? g.sharedInput('sin_kc', ['Sc1', hd / 2]) : g.sharedInput('sin_k', [rotatedCount, hd])) : '';
  const compressedType = options.compressedType;
  const features = (kind: 'k' | 'v', rank: number): string => {
    if (typeof compressedType === 'object') return dequantisedFeatures(g, kind, rank, compressedType.codes, compressedType.window);
    const input = g.input(`c_${kind}`, ['Sc', rank], compressedType);
    return compressedType === 'float16' ? g.op('Cast', [input], { to: 1 }) : input;
  };
  const cK = factors ? features('k', factors.k.rank) : undefined;
  const cV = factors ? features('v', factors.v.rank) : undefined;

  const rotateHalf = (t: string): string => {
    const [first, second] = g.node('Split', [t, g.ints([hd / 2, hd / 2])], [`${t}_a`, `${t}_b`], { axis: -1 });
    return g.op('Concat', [g.op('Neg', [second!]), first!], { axis: -1 });
  };
  const rope = (t: string, cos: string, sin: string): string =>
    g.op('Add', [g.op('Mul', [t, cos]), g.op('Mul', [rotateHalf(t), sin])]);
  // Keys token-major [N, D] with cos/sin [N, hd]: every kv head of a token turns by the token's angles.
  const ropeKeys = (t: string, cos: string, sin: string): string => g.op('Reshape', [
    rope(g.op('Reshape', [t, g.ints([-1, kvHeads, hd])]), g.op('Unsqueeze', [cos, g.ints([1])]), g.op('Unsqueeze', [sin, g.ints([1])])),
    g.ints([-1, D])]);

  // Attention projections.
  const h = rmsNorm(g, x, w.inputNorm, config.rmsNormEps, 'input_norm');
  // q, k and v as one product over the stacked weights, split after; the queries' rows carry attention's
  // 1/sqrt(hd) (RoPE is linear), so no node scales them.
  const Q = heads * hd;
  const qkvWeights = stackRows([w.q, w.k, w.v], [Q, D, D], H, [w.qBias, w.kBias, w.vBias]);
  scaleFirstRows(qkvWeights, Q, H, 1 / Math.sqrt(hd));
  const qkv = linear(g, format, h, qkvWeights.weight, Q + 2 * D, H, 'qkv_proj', qkvWeights.bias);
  const [q, k, v] = g.node('Split', [qkv, g.ints([Q, D, D])], ['q_rows', 'k_new', 'v_new'], { axis: -1 }) as [string, string, string];
  g.output(k, 'k_new', ['T', D]);
  g.output(v, 'v_new', ['T', D]);
  let rebuilt: string | undefined; // token-major [Sc, D], before RoPE (the rows layout)
  if (factors && cK) {
    const kMean = g.weight('k_mean', factors.k.mean, [D]);
    const vMean = g.weight('v_mean', factors.v.mean, [D]);
    const kBasis = g.weight('k_basis', factors.k.basis, [D, factors.k.rank]);
    const vBasis = g.weight('v_basis', factors.v.basis, [D, factors.v.rank]);
    const cKNew = g.op('MatMul', [g.op('Sub', [k, kMean]), kBasis]);
    const cVNew = g.op('MatMul', [g.op('Sub', [v, vMean]), vBasis]);
    g.output(cKNew, 'c_k_new', ['T', factors.k.rank]);
    g.output(cVNew, 'c_v_new', ['T', factors.v.rank]);
    if (options.fullBranchOutputs) {
      // The features of the full branch's tokens, kept beside it until their block leaves the window.
      g.output(g.op('Concat', [g.input('c_k_pending', ['Sf', factors.k.rank]), cKNew], { axis: 0 }), 'c_k_pending_next', ['Sf+T', factors.k.rank]);
      g.output(g.op('Concat', [g.input('c_v_pending', ['Sf', factors.v.rank]), cVNew], { axis: 0 }), 'c_v_pending_next', ['Sf+T', factors.v.rank]);
    }
    if (!headMajor) rebuilt = g.op('Add', [g.op('Gemm', [cK, kBasis], { transB: 1 }), kMean]);
  }
  // [T, heads*hd] -> [kvHeads, nRep, T, hd]; query head j*nRep+i attends with kv head j (transformers' repeat_kv).
  const qHeads = g.op('Transpose', [g.op('Reshape', [q, g.ints([-1, kvHeads, nRep, hd])])], { perm: [1, 2, 0, 3] });
  // Head-major (CPU), RoPE is onnxruntime's RotaryEmbedding, one node where rope() takes six: it reads tables of
  // half angles [N, hd/2] from position 0, by default the chunk's (its angles' first half: the halves are equal).
  const half = (t: string): string => g.op('Slice', [t, g.ints([0]), g.ints([hd / 2]), g.ints([1])]);
  const chunkAngles = headMajor ? [half(cosQ), half(sinQ)] as const : undefined;
  const rotary = (t: string, [cos, sin] = chunkAngles!, attrs: Record<string, number> = {}): string => g.contribOp('RotaryEmbedding', [t, g.ints([0]), cos, sin], attrs);
  const qRot = headMajor ? rotary(qHeads) : rope(qHeads, cosQ, sinQ);
  // [N, D] -> [kvHeads, hd, N] (keys, for q k^T) and [kvHeads, N, hd] (values).
  const keysByHead = (t: string): string => g.op('Transpose', [g.op('Reshape', [t, g.ints([-1, kvHeads, hd])])], { perm: [1, 2, 0] });
  const valuesByHead = (t: string): string => g.op('Transpose', [g.op('Reshape', [t, g.ints([-1, kvHeads, hd])])], { perm: [1, 0, 2] });
  let attn: string; // [kvHeads, nRep, T, hd]
  if (headMajor) {
    const fullType = options.fullType ?? 'float32';
    const widened = (t: string): string => (fullType === 'float16' ? g.op('Cast', [t], { to: 1 }) : t);
    const narrowed = (t: string): string => (fullType === 'float16' ? g.op('Cast', [t], { to: 10 }) : t);
    const kCache = widened(g.input('k_cache', [kvHeads, hd, 'C'], fullType));
    const vCache = widened(g.input('v_cache', [kvHeads, 'C', hd], fullType));
    const kRotNew = rotary(g.op('Reshape', [k, g.ints([1, -1, D])]), chunkAngles, { num_heads: kvHeads }); // [1, T, D]
    g.output(narrowed(kRotNew), 'k_append', [1, 'T', D], fullType);
    g.output(narrowed(v), 'v_append', ['T', D], fullType);
    // Queries of a kv head as one matrix [kvHeads, nRep*T, hd]: each product reads the head's keys once.
    const queries = g.op('Reshape', [qRot, g.ints([kvHeads, -1, hd])]);
    // The softmax is split over three parts, the cache's C slots, the compressed keys and the chunk's own keys,
    // each part's scores [kvHeads, nRep*T, N] exponentiated against the row's maximum over all three and applied
    // to that part's values, the sums divided once at the end: no part's scores or weights are ever copied into or
    // out of a joined matrix (a prefill chunk's are 14 MB per layer at 2048 tokens). Each part has its own mask,
    // its rows already repeated per query head of a kv head (row r*T + t is query t), so that no node computes a
    // shape or slices a mask at run time.
    const scoresOver = (keys: string, partMask: string): string => g.op('Add', [g.op('MatMul', [queries, keys]), partMask]);
    const parts = [
      scoresOver(kCache, g.sharedInput('mask_cache', [MASK_ROWS, 'C'])),
      scoresOver(keysByHead(kRotNew), g.sharedInput('mask_chunk', ['R', 'T'])),
    ];
    if (factors && cK) {
      // One zero key past the compressed ones, masked (mask_compressed [R, Sc + 1]): never a part over an empty axis
      // while the branch is empty (onnxruntime's CPU MatMul faults on a product over one, SIGFPE; its empty
      // reductions get shapes wrong). One Pad gives the features their ones column (the mean) and the padding row
      // (ones too: its angles are 0, so RoPE turns that key to zero).
      const keys = rotary(rebuiltKeysByHead(g, factors.k, g.op('Pad', [cK, g.ints([0, 0, 1, 1]), g.scalar(1)]), kvHeads, hd), [cosK, sinK], { num_heads: 1 });
      // Transposed as onnxruntime fuses into the product (FusedMatMul, transB): the keys are never copied.
      parts.push(scoresOver(g.op('Transpose', [keys], { perm: [0, 2, 1] }), g.sharedInput('mask_compressed', [MASK_ROWS, 'Sc1'])));
    }
    // The chunk's own key is always seen (causal, and inside any sliding window): the maximum is finite.
    const rowMax = g.op('Max', parts.map((p) => g.op('ReduceMax', [p], { axes: [-1], keepdims: 1 })));
    const exps = parts.map((p) => g.op('Exp', [g.op('Sub', [p, rowMax])]));
    const total = (i: number): string => g.op('ReduceSum', [exps[i]!, g.ints([-1])], { keepdims: 1 });
    let out = g.op('Add', [g.op('MatMul', [exps[0]!, vCache]), g.op('MatMul', [exps[1]!, valuesByHead(v)])]);
    let sum = g.op('Add', [total(0), total(1)]);
    if (factors && cV) {
      const upProjection = g.weight('v_up', headMajorBasis(factors.v, kvHeads, hd), [kvHeads, factors.v.rank, hd]);
      const meanHeads = g.weight('v_mean_heads', factors.v.mean, [kvHeads, 1, hd]);
      // The compressed values stay in rank space: the weights times c_v (one zero row for the zero key), then U_v.
      const inRankSpace = g.op('MatMul', [exps[2]!, g.op('Pad', [cV, g.ints([0, 0, 1, 0])])]);
      const compressedTotal = total(2);
      out = g.op('Add', [out, g.op('Add', [g.op('MatMul', [inRankSpace, upProjection]), g.op('Mul', [compressedTotal, meanHeads])])]);
      sum = g.op('Add', [sum, compressedTotal]);
    }
    attn = g.op('Reshape', [g.op('Div', [out, sum]), g.ints([kvHeads, nRep, -1, hd])]);
  } else {
    const kFull = g.input('k_full', ['Sf', D]);
    const vFull = g.input('v_full', ['Sf', D]);
    // Every key of the attention, token-major [S, D], after RoPE.
    let keys: string;
    const fullBranchOutputs = options.fullBranchOutputs === true;
    if (keysRotated) {
      const kRotNew = ropeKeys(k, cosQ, sinQ);
      g.output(kRotNew, 'k_rot_new', ['T', D]);
      const fullKeys = g.op('Concat', [kFull, kRotNew], { axis: 0 });
      if (fullBranchOutputs) g.output(fullKeys, 'k_full_next', ['Sf+T', D]);
      keys = rebuilt ? g.op('Concat', [ropeKeys(rebuilt, cosK, sinK), fullKeys], { axis: 0 }) : fullKeys;
    } else {
      const fullKeys = g.op('Concat', [kFull, k], { axis: 0 });
      if (fullBranchOutputs) g.output(fullKeys, 'k_full_next', ['Sf+T', D]);
      keys = ropeKeys(rebuilt ? g.op('Concat', [rebuilt, fullKeys], { axis: 0 }) : fullKeys, cosK, sinK);
    }

    // [S, D] -> [kvHeads, 1, hd, S]
    const kRot = g.op('Unsqueeze', [g.op('Transpose', [g.op('Reshape', [keys, g.ints([-1, kvHeads, hd])])], { perm: [1, 2, 0] }), g.ints([1])]);
    const scores = g.op('Add', [g.op('MatMul', [qRot, kRot]), g.sharedInput('mask', ['T', 'S'])]);
    const probs = g.op('Softmax', [scores], { axis: -1 });

    const toHeads = (t: string): string =>
      g.op('Unsqueeze', [g.op('Transpose', [g.op('Reshape', [t, g.ints([-1, kvHeads, hd])])], { perm: [1, 0, 2] }), g.ints([1])]);
    const valueRows = g.op('Concat', [vFull, v], { axis: 0 });
    if (fullBranchOutputs) g.output(valueRows, 'v_full_next', ['Sf+T', D]);
    const values = toHeads(valueRows);
    if (factors && cV) {
      const compressedCount = g.op('Slice', [g.op('Shape', [cV]), g.ints([0]), g.ints([1])]);
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
  }
  const merged = g.op('Reshape', [g.op('Transpose', [attn], { perm: [2, 0, 1, 3] }), g.ints([-1, heads * hd])]);
  const x1 = g.op('Add', [x, linear(g, format, merged, w.o, H, heads * hd, 'o_proj', w.oBias)]);

  // SwiGLU MLP. (The residual sum and its norm stay two nodes: onnxruntime's SkipSimplifiedLayerNormalization gave
  // other bits for a row in a chunk of 18 than in one of 12, which the engine suite's chunking test refuses.)
  const h2 = rmsNorm(g, x1, w.postNorm, config.rmsNormEps, 'post_norm');
  const gate = linear(g, format, h2, w.gate, I, H, 'gate_proj', w.gateBias);
  const up = linear(g, format, h2, w.up, I, H, 'up_proj', w.upBias);
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
  return g.op('Add', [x1, linear(g, format, act, w.down, H, I, 'down_proj', w.downBias)]);
}

/** RMSNorm as one node: onnxruntime's SimplifiedLayerNormalization (its own domain's name for it), in f32. */
function rmsNorm(g: GraphBuilder, input: string, weight: Float32Array, eps: number, name: string): string {
  return g.op('SimplifiedLayerNormalization', [input, g.weight(name, weight, [weight.length])], { axis: -1, epsilon: { float: eps }, stash_type: 1 });
}

/**
 * The compressed keys rebuilt head-major [kvHeads, N, hd], before RoPE, by one batched product: the features with
 * a ones column (c [N, r + 1]) times each head's rows of U with the mean as an extra row ([kvHeads, r + 1, hd]).
 */
function rebuiltKeysByHead(g: GraphBuilder, f: Factor, c: string, kvHeads: number, hd: number): string {
  return g.op('MatMul', [c, g.weight('k_up', headMajorBasis(f, kvHeads, hd, true), [kvHeads, f.rank + 1, hd])]);
}

/**
 * U [D, r] (D = kvHeads*hd, row-major) -> [kvHeads, r, hd]: each head's rows, transposed. With `meanRow`
 * [kvHeads, r + 1, hd], the head's part of the mean as its last row (for features with a ones column).
 */
function headMajorBasis(f: Factor, kvHeads: number, hd: number, meanRow = false): Float32Array {
  const rows = f.rank + (meanRow ? 1 : 0);
  const out = new Float32Array(kvHeads * rows * hd);
  for (let head = 0; head < kvHeads; head++) {
    for (let c = 0; c < hd; c++) {
      const row = (head * hd + c) * f.rank;
      for (let j = 0; j < f.rank; j++) out[(head * rows + j) * hd + c] = f.basis[row + j]!;
      if (meanRow) out[(head * rows + f.rank) * hd + c] = f.mean[head * hd + c]!;
    }
  }
  return out;
}

/**
 * Final norm and the output projection, for the rows whose logits are wanted. For q8/q4 the head may come row by
 * row from the checkpoint's bytes: a 150k-token vocabulary never exists as a whole f32 matrix.
 */
export function buildHeadGraph(config: ModelConfig, finalNorm: Float32Array, lmHead: LinearWeight | RowReader, format: WeightFormat): OnnxGraph {
  const { hiddenSize: H, vocabSize: V } = config;
  const g = new GraphBuilder('lm_head');
  const x = g.input('x', ['N', H]);
  const normed = rmsNorm(g, x, finalNorm, config.rmsNormEps, 'norm');
  g.output(linear(g, format, normed, lmHead, V, H, 'lm_head'), 'logits', ['N', V]);
  return g.finish();
}
