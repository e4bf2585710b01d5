// The additive masks of the CPU engine's head-major layer graphs (layerGraph.ts), one per part of the split softmax:
// mask_cache [R, C] over the cache's C slots (slot j is position Sc + j; slots past the tokens held are hidden),
// mask_compressed [R, Sc + 1] over the compressed keys (positions [0, Sc)) and the graph's padding key (always
// hidden), and mask_chunk [R, T] over the chunk's own keys (positions start + j); causal, plus Mistral's sliding
// window. Each row is repeated per query head of a kv head (R = nRep * T, row r*T + t is query t), in the order the
// graph's scores take.
//
// Where no query of the chunk has a position hidden by a sliding window (every model without one), every row of the
// cache's and the compressed keys' masks is the same, so they are that one row [1, N], which the graph's Add
// broadcasts: as rows, the compressed mask of a 30k-token context was 26 MB made and read per chunk (7 x 31 rows of
// 30k) for a keystroke's 31-token prefill. The values the graph adds are the same either way.
import { ort } from '../onnx/ort';

export interface MaskShape {
  /** Position of the chunk's first token. */
  start: number;
  /** The chunk's tokens. */
  T: number;
  /** Compressed positions [0, Sc). */
  Sc: number;
  /** The cache's slots (the head-major buffers' capacity), of which start - Sc hold tokens. */
  C: number;
  /** Query heads per kv head. */
  nRep: number;
  /** With CSKV: mask_compressed too. */
  compressed: boolean;
  /** Mistral's sliding window, if the model has one. */
  sliding: number | undefined;
}

export function headMajorMasks(s: MaskShape): Record<string, ort.Tensor> {
  const { start, T, Sc, C, nRep } = s;
  // Query n sees positions from n - sliding + 1 on: the chunk's last query hides none when that is at most 0.
  if (s.sliding !== undefined && start + T - s.sliding > 0) return maskRows(joinedMask(s), s);
  const held = start - Sc;
  const masks: Record<string, ort.Tensor> = {
    mask_cache: new ort.Tensor('float32', new Float32Array(C).fill(-Infinity, held), [1, C]),
    mask_chunk: new ort.Tensor('float32', causalRows(T, nRep), [nRep * T, T]),
  };
  if (s.compressed) {
    const row = new Float32Array(Sc + 1);
    row[Sc] = -Infinity;
    masks.mask_compressed = new ort.Tensor('float32', row, [1, Sc + 1]);
  }
  return masks;
}

/** The chunk's own keys: query t sees keys [0, t]; rows repeated per query head. */
function causalRows(T: number, nRep: number): Float32Array {
  const out = new Float32Array(nRep * T * T);
  for (let r = 0; r < nRep; r++) {
    for (let t = 0; t < T; t++) out.fill(-Infinity, (r * T + t) * T + t + 1, (r * T + t + 1) * T);
  }
  return out;
}

/** Every part's mask side by side, one row per query [T, C + Sc + T]: causal, plus the sliding window. */
function joinedMask({ start, T, Sc, C, sliding }: MaskShape): Float32Array {
  const width = C + Sc + T;
  const held = start - Sc;
  const mask = new Float32Array(T * width);
  for (let q = 0; q < T; q++) {
    const n = start + q;
    const row = mask.subarray(q * width, (q + 1) * width);
    row.fill(-Infinity, held, C);
    row.fill(-Infinity, C + Sc + q + 1);
    if (sliding !== undefined && n - sliding + 1 > 0) {
      const first = n - sliding + 1; // the first position still seen
      row.fill(-Infinity, 0, Math.min(Math.max(first - Sc, 0), held));
      row.fill(-Infinity, C, C + Math.min(first, Sc));
      row.fill(-Infinity, C + Sc, C + Sc + Math.min(Math.max(first - start, 0), T));
    }
  }
  return mask;
}

/** The joined mask cut into the parts, each row repeated per query head of a kv head. */
function maskRows(joined: Float32Array, { T, Sc, C, nRep, compressed }: MaskShape): Record<string, ort.Tensor> {
  const width = C + Sc + T;
  const part = (from: number, to: number, padding: number): ort.Tensor => {
    const w = to - from + padding;
    const out = new Float32Array(nRep * T * w).fill(-Infinity);
    for (let r = 0; r < nRep; r++) {
      for (let t = 0; t < T; t++) out.set(joined.subarray(t * width + from, t * width + to), (r * T + t) * w);
    }
    return new ort.Tensor('float32', out, [nRep * T, w]);
  };
  const masks: Record<string, ort.Tensor> = { mask_cache: part(0, C, 0), mask_chunk: part(C + Sc, width, 0) };
  if (compressed) masks.mask_compressed = part(C, C + Sc, 1);
  return masks;
}
