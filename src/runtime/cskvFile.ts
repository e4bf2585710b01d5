// cskv.safetensors, the CSKV factor file (format in docs/cskv.md): per layer the low-rank bases and means of keys
// and values, plus the cache settings as string metadata. Read by every engine, written by `cskv-code compress`.
import { COMPRESSED_BITS_TEXT, type CompressedBits, isCompressedBits } from '../protocol';
import { ModelFormatError } from './errors';
import type { ModelConfig } from './model/config';
import { firstNonFinite, requireFinite } from './model/finiteValues';
import { SafetensorsFile } from './safetensors';
import { float32Bytes, type TensorToWrite, writeSafetensors } from './safetensorsWriter';

/** The factors of one branch (a layer's keys or values) as calibration produces them and the file stores them. */
export interface BranchFactors {
  /** Channel groups of the block-diagonal basis (1: the whole layer). */
  readonly groups: number;
  /** Features per group; the branch holds groups × rank features per token. */
  readonly rank: number;
  /** Row-major [groups, D/groups, rank] (for one group simply [D, rank]), orthonormal columns per group. */
  readonly basis: Float32Array;
  /** [D]. */
  readonly mean: Float32Array;
}

/** One branch's factors of one layer as engines use them: groups expanded to a block-diagonal basis [D, r]. */
export interface Factor {
  basis: Float32Array;
  mean: Float32Array;
  rank: number;
}

export interface LayerFactors {
  k: Factor;
  v: Factor;
}

/** `__metadata__` keys: the required ones, the optional ones readers use, and what `compress` records. */
export interface CskvMetadata {
  format: 'cskv';
  version: '1';
  /** W, a positive integer. */
  window: string;
  /** 16, 8, 4 or 2. */
  bits: string;
  density?: string;
  /** A file whose fingerprint differs from the model's is refused. */
  model_fingerprint?: string;
  groups?: string;
  init?: string;
  rotate?: string;
  calibration_tokens?: string;
  heldout_tokens?: string;
  source?: string;
  tool?: string;
}

export interface CskvFactors {
  readonly file: string;
  readonly window: number;
  readonly bits: CompressedBits;
  readonly density: number | undefined;
  readonly layers: readonly LayerFactors[];
  readonly metadata: Readonly<Record<string, string>>;
}

export function readCskvFile(file: string, config: ModelConfig, modelFingerprint: string): CskvFactors {
  const st = SafetensorsFile.open(file);
  try {
    const fail = (what: string): never => {
      throw new ModelFormatError(file, what);
    };
    const meta = st.metadata;
    if (meta.format !== 'cskv') fail(`not a CSKV factor file: __metadata__.format is ${JSON.stringify(meta.format)}, expected "cskv"`);
    if (meta.version !== '1') fail(`unsupported CSKV file version ${JSON.stringify(meta.version)} (this runtime reads version 1)`);
    const window = Number(meta.window);
    if (!Number.isInteger(window) || window < 1) fail(`__metadata__.window must be a positive integer, got ${JSON.stringify(meta.window)}`);
    const bits = Number(meta.bits);
    if (!isCompressedBits(bits)) fail(`__metadata__.bits must be ${COMPRESSED_BITS_TEXT}, got ${JSON.stringify(meta.bits)}`);
    if (meta.model_fingerprint !== undefined && meta.model_fingerprint !== modelFingerprint) {
      fail(`made for another model (fingerprint ${meta.model_fingerprint}, this model's is ${modelFingerprint}); calibrate this model with \`cskv-code compress\``);
    }
    const fileLayers = new Set([...st.tensors.keys()].map((n) => /^layers\.(\d+)\./.exec(n)?.[1]).filter((x) => x !== undefined));
    if (fileLayers.size !== config.layers) {
      fail(`has factors for ${fileLayers.size} layers but the model has ${config.layers}; it was made for another model`);
    }
    const D = config.kvDim;
    const read = (name: string): Float32Array => {
      const values = st.readFloat32(name);
      requireFinite(firstNonFinite(values), file, name);
      return values;
    };
    const factor = (layer: number, kind: 'k' | 'v'): Factor => {
      const basisName = `layers.${layer}.${kind}.basis`;
      const meanName = `layers.${layer}.${kind}.mean`;
      const basisInfo = st.tensors.get(basisName) ?? fail(`missing tensor "${basisName}"`);
      const mean = read(meanName);
      if (mean.length !== D) fail(`tensor "${meanName}" has ${mean.length} channels but the model's keys/values have ${D} (kv heads × head dim); it was made for another model`);
      const shape = basisInfo.shape;
      if (shape.length === 2) {
        if (shape[0] !== D || shape[1]! < 1 || shape[1]! > D) fail(`tensor "${basisName}" has shape [${shape.join(', ')}], expected [${D}, rank ≤ ${D}]`);
        return { basis: read(basisName), mean, rank: shape[1]! };
      }
      if (shape.length === 3) {
        const [groups, rows, rank] = shape as [number, number, number];
        if (groups * rows !== D || rank < 1 || rank > rows) fail(`tensor "${basisName}" has shape [${shape.join(', ')}], expected [groups, ${D}/groups, rank]`);
        return { basis: blockDiagonal(read(basisName), groups, rows, rank), mean, rank: groups * rank };
      }
      return fail(`tensor "${basisName}" must have 2 or 3 dimensions, has ${shape.length}`);
    };
    const layers = Array.from({ length: config.layers }, (_, i) => ({ k: factor(i, 'k'), v: factor(i, 'v') }));
    const density = meta.density === undefined ? undefined : Number(meta.density);
    return { file, window, bits: bits as CompressedBits, density, layers, metadata: { ...meta } };
  } finally {
    st.close();
  }
}

/** [groups, rows, rank] -> block-diagonal [groups*rows, groups*rank]: group g's features come g-th. */
function blockDiagonal(grouped: Float32Array, groups: number, rows: number, rank: number): Float32Array {
  const width = groups * rank;
  const out = new Float32Array(groups * rows * width);
  for (let g = 0; g < groups; g++) {
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < rank; j++) out[(g * rows + r) * width + g * rank + j] = grouped[(g * rows + r) * rank + j]!;
    }
  }
  return out;
}

export interface LayerFactorsToWrite {
  readonly k: BranchFactors;
  readonly v: BranchFactors;
}

/** Writes the factors f32 with `metadata` (format and version are added), atomically. */
export function writeCskvFactors(file: string, layers: readonly LayerFactorsToWrite[], metadata: Omit<CskvMetadata, 'format' | 'version'>): void {
  const tensors: Record<string, TensorToWrite> = {};
  layers.forEach((layer, i) => {
    for (const kind of ['k', 'v'] as const) {
      const f = layer[kind];
      const D = f.mean.length;
      const shape = f.groups === 1 ? [D, f.rank] : [f.groups, D / f.groups, f.rank];
      tensors[`layers.${i}.${kind}.basis`] = { dtype: 'F32', shape, data: () => float32Bytes(f.basis) };
      tensors[`layers.${i}.${kind}.mean`] = { dtype: 'F32', shape: [D], data: () => float32Bytes(f.mean) };
    }
  });
  const header: CskvMetadata = { format: 'cskv', version: '1', ...metadata };
  writeSafetensors(file, tensors, { ...header });
}
