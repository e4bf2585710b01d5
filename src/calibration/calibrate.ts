// CSKV calibration end to end (docs/cskv.md): run the model over calibration segments with the full cache, stream
// each layer's key/value statistics, turn them into ordered candidate directions (closed form, or the SVD/ASVD
// baselines of the weights), spend one global channel budget on ranks, and score the result on held-out tokens.
//
// Memory: the statistics are the only large state, D × D / groups float64 per branch. When they do not all fit
// in `statisticsBudget`, the calibration segments are run several times, each pass accumulating a slice of the
// layers; the directions of finished layers wait on disk (directionSpill.ts) until the ranks are known.
import type { CompressedBits } from '../protocol';
import type { BranchFactors } from '../runtime/cskvFile';
import type { Engine } from '../runtime/engine';
import { ModelWeights } from '../runtime/model/weights';
import { preimageInputScaleSquared } from './activationScaling';
import { type OrderedDirections, trace } from './basis';
import { closedFormDirections } from './closedForm';
import { DirectionSpill, type SpilledDirections } from './directionSpill';
import { symmetricEigen } from './eigen';
import { hadamardRotation } from './hadamard';
import { HeldOutError, type ReconstructionScore } from './heldOutError';
import { allocateRanks, rankBudget } from './rankAllocation';
import { SecondMoments } from './secondMoments';
import { weightSvdDirections } from './weightSvd';

export type Initialisation = 'closed' | 'svd' | 'asvd';
/** hadamard-values rotates only the value bases: measured to halve the 2-bit value error and cost keys a few % (see hadamard.ts). */
export type Rotation = 'none' | 'hadamard' | 'hadamard-values';

export interface CalibrationSettings {
  /** Target fraction of key/value channels kept, over all layers together. */
  density: number;
  /** Channel groups (of whole kv heads) of a block-diagonal basis; 1 = whole layer. */
  groups: number;
  init: Initialisation;
  rotate: Rotation;
  /** Cache settings the held-out "stored" error is scored with (and recorded in the file). */
  window: number;
  bits: CompressedBits;
  /** Bytes the streaming statistics may hold at once. */
  statisticsBudget: number;
  /** A temporary file for candidate directions; deleted before calibrate returns. */
  spillFile: string;
  onProgress?: ((line: string) => void) | undefined;
}

export interface BranchReport {
  /** Features per token: groups × rank per group. */
  features: number;
  /** Fraction of the calibration variance the basis keeps. */
  retained: number;
  heldOut: ReconstructionScore;
}

export interface LayerReport {
  layer: number;
  k: BranchReport;
  v: BranchReport;
}

export interface CalibrationResult {
  layers: { k: BranchFactors; v: BranchFactors }[];
  report: LayerReport[];
  passes: number;
}

interface Candidates {
  mean: Float64Array;
  /** Per channel group: the calibration eigenvalues (for the ranks), and the init's directions on disk. */
  groups: { spectrum: Float64Array; captured: Float64Array; spilled: SpilledDirections }[];
  variance: number;
}

const KINDS = ['k', 'v'] as const;

export async function calibrate(engine: Engine, train: readonly number[][], heldOut: readonly number[][], settings: CalibrationSettings): Promise<CalibrationResult> {
  const { config } = engine.info;
  const L = config.layers, D = config.kvDim, G = settings.groups;
  if (!Number.isInteger(G) || G < 1 || config.kvHeads % G !== 0) throw new RangeError(`groups must divide the ${config.kvHeads} kv heads, got ${G}`);
  const budget = rankBudget(settings.density, L, D);
  const progress = settings.onProgress ?? ((): void => {});
  // ASVD's pre-image needs every channel's covariance with every other, so it keeps whole-layer statistics.
  const statisticsBlocks = settings.init === 'asvd' ? 1 : G;
  const layerBytes = 2 * SecondMoments.bytes(D, statisticsBlocks);
  const layersPerPass = Math.max(1, Math.min(L, Math.floor(settings.statisticsBudget / layerBytes)));
  const passes = Math.ceil(L / layersPerPass);
  const weights = settings.init === 'closed' ? undefined : ModelWeights.open(engine.info.modelDir);
  const spill = DirectionSpill.create(settings.spillFile);
  try {
    const candidates: Candidates[][] = [];
    for (let pass = 0; pass < passes; pass++) {
      const first = pass * layersPerPass, end = Math.min(L, first + layersPerPass);
      const stats = Array.from({ length: end - first }, () => ({ k: new SecondMoments(D, statisticsBlocks), v: new SecondMoments(D, statisticsBlocks) }));
      const label = passes === 1 ? 'statistics' : `statistics pass ${pass + 1}/${passes} (layers ${first}-${end - 1})`;
      await feed(engine, train, label, progress, (layer, k, v, tokens) => {
        if (layer < first || layer >= end) return;
        stats[layer - first]!.k.add(k, tokens);
        stats[layer - first]!.v.add(v, tokens);
      });
      for (let layer = first; layer < end; layer++) {
        progress(`directions of layer ${layer + 1}/${L}`);
        candidates[layer] = KINDS.map((kind) => directionsOf(stats[layer - first]![kind], layer, kind, settings, engine, weights, spill));
      }
    }
    const branches = candidates.flat();
    const ranks = allocateRanks(branches.map((b) => ({ groups: b.groups.map((g) => g.spectrum) })), budget);
    const layers = candidates.map((pair, layer) => {
      const rotated = (kind: 'k' | 'v'): boolean => settings.rotate === 'hadamard' || (settings.rotate === 'hadamard-values' && kind === 'v');
      const [k, v] = pair.map((c, i) => factorsOf(c, ranks[layer * 2 + i]!, D, rotated(KINDS[i]!), spill)) as [BranchFactors, BranchFactors];
      return { k, v };
    });
    const scores = layers.map((l) => ({
      k: new HeldOutError(l.k, D, 'k', settings.bits, settings.window),
      v: new HeldOutError(l.v, D, 'v', settings.bits, settings.window),
    }));
    await feed(engine, heldOut, 'held-out error', progress, (layer, k, v, tokens) => {
      scores[layer]!.k.add(k, tokens);
      scores[layer]!.v.add(v, tokens);
    }, () => scores.forEach((s) => (s.k.endSegment(), s.v.endSegment())));
    const report = candidates.map((pair, layer): LayerReport => {
      const branch = (i: 0 | 1): BranchReport => {
        const c = pair[i]!, r = ranks[layer * 2 + i]!;
        let kept = 0;
        for (const g of c.groups) for (let j = 0; j < r; j++) kept += g.captured[j]!;
        return { features: r * c.groups.length, retained: c.variance > 0 ? kept / c.variance : 1, heldOut: scores[layer]![KINDS[i]].score() };
      };
      return { layer, k: branch(0), v: branch(1) };
    });
    return { layers, report, passes };
  } finally {
    spill.dispose();
    weights?.close();
  }
}

type Observer = (layer: number, keys: Float32Array, values: Float32Array, tokens: number) => void;

/** Prefills every segment from an empty cache, handing each layer's keys and values to `observe`. */
async function feed(engine: Engine, segments: readonly number[][], label: string, progress: (line: string) => void, observe: Observer, endSegment?: () => void): Promise<void> {
  const total = segments.reduce((a, s) => a + s.length, 0);
  const started = Date.now();
  let done = 0, reported = started;
  for (const segment of segments) {
    await engine.truncate(0);
    await engine.prefill(segment, { logits: 0, observeKeysValues: observe });
    endSegment?.();
    done += segment.length;
    const now = Date.now();
    if (now - reported >= 2000 || done === total) {
      const rate = done / Math.max((now - started) / 1000, 1e-3);
      progress(`${label}: ${done}/${total} tokens (${((100 * done) / total).toFixed(0)}%), ${rate.toFixed(0)} tokens/s`);
      reported = now;
    }
  }
  await engine.truncate(0);
}

function directionsOf(
  stats: SecondMoments, layer: number, kind: 'k' | 'v', settings: CalibrationSettings, engine: Engine, weights: ModelWeights | undefined, spill: DirectionSpill,
): Candidates {
  const { config } = engine.info;
  const D = config.kvDim, H = config.hiddenSize, G = settings.groups, size = D / G;
  const prefix = `model.layers.${layer}.self_attn.${kind}_proj`;
  const weight = weights?.readFloat32(`${prefix}.weight`, [D, H]);
  const bias = weights && config.qkvBias ? weights.readFloat32(`${prefix}.bias`, [D]) : undefined;
  const mean = stats.mean();
  const inputScale = settings.init === 'asvd' ? preimageInputScaleSquared(weight!, D, H, bias, stats.covariance(0, 1), mean) : undefined;
  let variance = 0;
  const groups = Array.from({ length: G }, (_, g) => {
    const covariance = stats.covariance(g, G);
    variance += trace(covariance, size);
    let directions: OrderedDirections;
    let spectrum: Float64Array;
    if (settings.init === 'closed') {
      directions = closedFormDirections(covariance, size);
      spectrum = directions.captured;
    } else {
      // Baselines get the same ranks as the closed form (from the calibration spectrum): the bases alone differ.
      directions = weightSvdDirections(weight!, H, g * size, size, covariance, inputScale);
      spectrum = symmetricEigen(covariance, size).values;
    }
    return { spectrum, captured: directions.captured, spilled: spill.write(directions.rows, size) };
  });
  // The baselines reconstruct around the projection's bias, as an A·B factorisation of W does.
  const centre = settings.init === 'closed' ? mean : Float64Array.from(bias ?? new Float32Array(D));
  return { mean: centre, groups, variance };
}

function factorsOf(c: Candidates, rank: number, D: number, rotate: boolean, spill: DirectionSpill): BranchFactors {
  const G = c.groups.length, size = D / G;
  const basis = new Float32Array(D * rank);
  const rotation = rotate ? hadamardRotation(rank) : undefined;
  c.groups.forEach((group, g) => {
    const rows = spill.read(group.spilled, rank); // [rank, size]
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < rank; j++) {
        let value: number;
        if (rotation) {
          value = 0;
          for (let p = 0; p < rank; p++) value += rows[p * size + i]! * rotation[p * rank + j]!;
        } else {
          value = rows[j * size + i]!;
        }
        basis[(g * size + i) * rank + j] = value;
      }
    }
  });
  return { groups: G, rank, basis, mean: Float32Array.from(c.mean) };
}
