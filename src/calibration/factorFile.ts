// Writes cskv.safetensors in the format of cskv.md (read back by cache/cskvFile.ts): per layer the key and value
// bases ([D, r], or [groups, D/groups, r] for head groups) and means, f32, with string metadata, atomically.
import { float32Bytes, type TensorToWrite, writeSafetensors } from '../runtime/safetensorsWriter';
import type { BranchFactors } from './branchFactors';

export interface LayerFactorsToWrite {
  readonly k: BranchFactors;
  readonly v: BranchFactors;
}

export function writeCskvFactors(file: string, layers: readonly LayerFactorsToWrite[], metadata: Record<string, string>): void {
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
  writeSafetensors(file, tensors, { format: 'cskv', version: '1', ...metadata });
}
