// Quantised compressed features (8/4/2 bits, quantizer.ts) in the form the WebGPU layer graphs keep on the device
// and dequantise themselves: the codes of each token's row packed into float32 elements, plus the scales and zero
// points widened to f32. onnxruntime's WebGPU provider has no uint8 arithmetic or bit shifts, but every integer
// below 2^24 is exact in f32, and so are scaling by a power of two and Floor: an element holds floor(24 / bits)
// codes (3 at 8 bits, 6 at 4, 12 at 2: 75% of its bits) and the graph takes them apart with Mul, Floor and Sub.
import { GraphBuilder } from './graphBuilder';
import { type QuantisedBlock, VALUE_GROUP, getCode } from '../cache/quantizer';
import { halfBitsToFloat } from '../half';

export type QuantisedBits = 8 | 4 | 2;
export type FeatureKind = 'k' | 'v';

/** Codes per f32 element: as many whole codes as fit in the 24 bits an f32 holds exactly as an integer. */
function codesPerElement(bits: QuantisedBits): number {
  return Math.floor(24 / bits);
}

/** Codes per token row as packed: keys their rank, values their rank rounded up to whole groups (padded with 0). */
function codeColumns(kind: FeatureKind, rank: number): number {
  return kind === 'k' ? rank : Math.ceil(rank / VALUE_GROUP) * VALUE_GROUP;
}

/** f32 elements per token row of packed codes. */
export function packedColumns(kind: FeatureKind, rank: number, bits: QuantisedBits): number {
  return Math.ceil(codeColumns(kind, rank) / codesPerElement(bits));
}

/** Columns of the scale and zero rows: keys one per channel (a row per block), values one per group (a row per token). */
export function scaleColumns(kind: FeatureKind, rank: number): number {
  return kind === 'k' ? rank : Math.ceil(rank / VALUE_GROUP);
}

/** The graph inputs of one kind of features in this form, in the order packBlock returns them. */
export function packedInputNames(kind: FeatureKind): [codes: string, scales: string, zeros: string] {
  return [`c_${kind}_codes`, `c_${kind}_scales`, `c_${kind}_zeros`];
}

export interface PackedBlock {
  /** [tokens, packedColumns] */
  codes: Float32Array;
  /** Keys: [1, rank] (the block's per-channel pairs); values: [tokens, groups]. Zeros alike. */
  scales: Float32Array;
  zeros: Float32Array;
}

/** One quantised block of `tokens` rows as the graph takes it. */
export function packBlock(block: QuantisedBlock, kind: FeatureKind, tokens: number, rank: number, bits: QuantisedBits): PackedBlock {
  const perElement = codesPerElement(bits);
  const width = packedColumns(kind, rank, bits);
  const codes = new Float32Array(tokens * width);
  for (let t = 0; t < tokens; t++) {
    for (let c = 0; c < rank; c++) {
      const at = t * width + Math.floor(c / perElement);
      codes[at] = codes[at]! + getCode(block.codes, t * rank + c, bits) * 2 ** (bits * (c % perElement));
    }
  }
  const pairs = block.scaleZero.length / 2;
  const scales = new Float32Array(pairs);
  const zeros = new Float32Array(pairs);
  for (let i = 0; i < pairs; i++) {
    scales[i] = halfBitsToFloat(block.scaleZero[2 * i]!);
    zeros[i] = halfBitsToFloat(block.scaleZero[2 * i + 1]!);
  }
  return { codes, scales, zeros };
}

/**
 * Adds the dequantisation of one kind of features to a layer graph and returns its [Sc, rank] f32 result:
 * code * scale + zero, the values quantizer.ts's dequantise functions give (within an f32 rounding).
 */
export function dequantisedFeatures(g: GraphBuilder, kind: FeatureKind, rank: number, bits: QuantisedBits, window: number): string {
  const [codesName, scalesName, zerosName] = packedInputNames(kind);
  const perElement = codesPerElement(bits);
  const width = packedColumns(kind, rank, bits);
  const codes = g.input(codesName, ['Sc', width]);
  const scales = g.input(scalesName, [kind === 'k' ? 'Sb' : 'Sc', scaleColumns(kind, rank)]);
  const zeros = g.input(zerosName, [kind === 'k' ? 'Sb' : 'Sc', scaleColumns(kind, rank)]);
  // F_j = floor(x / 2^(bits*j)) for j = 0..perElement; code j = F_j - 2^bits * F_(j+1). The second step is one
  // MatMul with a matrix of 1 and -2^bits entries that also drops the padding: every partial sum is an integer
  // below 2^24, so it is exact in any order, and it costs one dispatch instead of four (each one counts on a
  // software adapter).
  const shifts = Float32Array.from({ length: perElement + 1 }, (_, j) => 2 ** (-bits * j));
  const floors = g.op('Reshape', [
    g.op('Floor', [g.op('Mul', [g.op('Unsqueeze', [codes, g.ints([2])]), g.weight(`c_${kind}_shifts`, shifts, [perElement + 1])])]),
    g.ints([-1, width * (perElement + 1)])]);
  const columns = codeColumns(kind, rank);
  const select = new Float32Array(width * (perElement + 1) * columns);
  for (let c = 0; c < columns; c++) {
    const row = Math.floor(c / perElement) * (perElement + 1) + (c % perElement);
    select[row * columns + c] = 1;
    select[(row + 1) * columns + c] = -(2 ** bits);
  }
  const used = g.op('MatMul', [floors, g.weight(`c_${kind}_unpack`, select, [width * (perElement + 1), columns])]);
  if (kind === 'k') {
    // Keys: one (scale, zero) per channel and block of W tokens.
    const blocks = g.op('Reshape', [used, g.ints([-1, window, rank])]);
    const scaled = g.op('Add', [g.op('Mul', [blocks, g.op('Unsqueeze', [scales, g.ints([1])])]), g.op('Unsqueeze', [zeros, g.ints([1])])]);
    return g.op('Reshape', [scaled, g.ints([-1, rank])]);
  }
  // Values: one (scale, zero) per token and group of VALUE_GROUP channels; the padding of the last group goes.
  const groups = g.op('Reshape', [used, g.ints([-1, columns / VALUE_GROUP, VALUE_GROUP])]);
  const scaled = g.op('Add', [g.op('Mul', [groups, g.op('Unsqueeze', [scales, g.ints([2])])]), g.op('Unsqueeze', [zeros, g.ints([2])])]);
  return g.op('Slice', [g.op('Reshape', [scaled, g.ints([-1, columns])]), g.ints([0]), g.ints([rank]), g.ints([1])]);
}
