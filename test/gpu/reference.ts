// Float64 references of the CUDA engine's kernels whose math the runtime has no other copy of: attention over
// both cache branches (native/src/kernels/attention.cuh) and the device sampler (native/src/kernels/sampling.cuh).
// They follow the kernels' contracts, not their code: test/gpu/ compares the kernels with them on the GPU
// machine, and test/gpu/reference.test.ts checks them on the CPU against independent facts.
import type { AttentionKernelArgs, NativeSampleRequest } from '../../src/runtime/backends/nativeAddon';

/** Attention output [queries, heads * headDim]; keys/values as given (the caller rounds them to bf16 first). */
export function attentionReference(a: AttentionKernelArgs): Float64Array {
  const { heads, kvHeads, headDim: hd } = a;
  const half = hd / 2, D = kvHeads * hd, Q = heads * hd;
  const queries = a.q.length / Q;
  const out = new Float64Array(queries * Q);
  const rotate = (x: (i: number) => number, p: number, i: number): [number, number] => {
    const angle = p * a.invFreq[i]!;
    const c = Math.fround(Math.cos(angle) * a.attentionFactor), s = Math.fround(Math.sin(angle) * a.attentionFactor);
    return [x(i) * c - x(i + half) * s, x(i + half) * c + x(i) * s];
  };
  const cached = (which: 'k' | 'v', p: number, channel: number): number => {
    if (p < a.compressedTokens) {
      const rebuilt = which === 'k' ? a.kRebuilt! : a.vRebuilt!;
      const mean = which === 'k' ? a.kMean! : a.vMean!;
      return rebuilt[p * D + channel]! + mean[channel]!;
    }
    return (which === 'k' ? a.kRing : a.vRing)[(p % a.ringRows) * D + channel]!;
  };
  for (let t = 0; t < queries; t++) {
    const n = a.start + t;
    const lo = a.slidingWindow > 0 ? Math.max(0, n - a.slidingWindow + 1) : 0;
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / (heads / kvHeads));
      const qRow = (i: number): number => a.q[t * Q + h * hd + i]!;
      const q = new Float64Array(hd);
      for (let i = 0; i < half; i++) [q[i], q[i + half]] = rotate(qRow, n, i);
      const scores: number[] = [];
      for (let p = lo; p <= n; p++) {
        let dot = 0;
        for (let i = 0; i < half; i++) {
          const [k0, k1] = rotate((c) => cached('k', p, g * hd + c), p, i);
          dot += q[i]! * k0 + q[i + half]! * k1;
        }
        scores.push(dot / Math.sqrt(hd));
      }
      const max = Math.max(...scores);
      const weights = scores.map((s) => Math.exp(s - max));
      const total = weights.reduce((x, y) => x + y, 0);
      for (let c = 0; c < hd; c++) {
        let sum = 0;
        weights.forEach((w, j) => (sum += w * cached('v', lo + j, g * hd + c)));
        out[t * Q + h * hd + c] = sum / total;
      }
    }
  }
  return out;
}

/** The sampler's kept candidates (thresholds) and the token u selects, in float64. */
export function sampleReference(logits: Float32Array, r: NativeSampleRequest): { token: number; kept: number[]; keptMass: number } {
  const V = logits.length;
  if (r.greedy) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i]! > logits[best]!) best = i;
    return { token: best, kept: [best], keptMass: 1 };
  }
  const max = Math.max(...logits);
  const weight = (i: number): number => Math.exp((logits[i]! - max) / r.temperature);
  const sorted = Array.from(logits).sort((x, y) => y - x);
  const kThreshold = r.topK > 0 && r.topK < V ? sorted[r.topK - 1]! : -Infinity;
  const candidates = [...Array(V).keys()].filter((i) => logits[i]! >= kThreshold);
  const total = candidates.reduce((s, i) => s + weight(i), 0);
  let threshold = kThreshold;
  if (r.topP < 1) {
    // The largest candidate value whose at-or-above mass still reaches p of the total.
    const values = [...new Set(candidates.map((i) => logits[i]!))].sort((x, y) => y - x);
    for (const v of values) {
      const mass = candidates.filter((i) => logits[i]! >= v).reduce((s, i) => s + weight(i), 0);
      if (mass >= Math.fround(r.topP) * total) {
        threshold = v;
        break;
      }
    }
  }
  const kept = candidates.filter((i) => logits[i]! >= threshold);
  const keptMass = kept.reduce((s, i) => s + weight(i), 0);
  let target = r.u * keptMass;
  for (const i of kept) {
    target -= weight(i);
    if (target < 0) return { token: i, kept, keptMass };
  }
  return { token: kept[kept.length - 1]!, kept, keptMass };
}

/** Where u * keptMass falls relative to the interval of `token`: 0 inside, else the distance (for rounding slack). */
export function sampleBoundaryDistance(logits: Float32Array, r: NativeSampleRequest, token: number): number {
  const { kept, keptMass } = sampleReference(logits, r);
  const max = Math.max(...logits);
  let before = 0;
  for (const i of kept) {
    const w = Math.exp((logits[i]! - max) / r.temperature);
    if (i === token) {
      const target = r.u * keptMass;
      return target < before ? (before - target) / keptMass : target >= before + w ? (target - before - w) / keptMass : 0;
    }
    before += w;
  }
  return Infinity;
}
