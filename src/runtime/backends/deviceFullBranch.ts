// The full branch of the cache kept on the GPU between steps (WebGPU backend, full cache). Each layer's graph
// outputs its keys and values with the step's tokens appended (k_full_next, v_full_next) as gpu-buffer tensors,
// and the next step feeds them straight back, so a decode step no longer uploads the whole cache per layer.
// The JS cache (BiBranchCache) stays the record: memory reports, snapshots and truncation read it (onnxruntime-node
// cannot read a gpu-buffer tensor back), and whenever the copies here do not hold exactly its rows (after a
// truncation or a restore) the engine uploads them from it once.
import type { ort } from '../onnx/ort';

interface LayerCopy {
  k: ort.Tensor;
  v: ort.Tensor;
  tokens: number;
}

export class DeviceFullBranch {
  private readonly layers: (LayerCopy | undefined)[];

  constructor(layerCount: number) {
    this.layers = new Array<LayerCopy | undefined>(layerCount).fill(undefined);
  }

  /** Layer `layer`'s keys and values on the device when they hold `tokens` rows, else undefined (upload them). */
  get(layer: number, tokens: number): LayerCopy | undefined {
    const copy = this.layers[layer];
    return copy && copy.tokens === tokens ? copy : undefined;
  }

  /** Takes the step's outputs as the layer's copies, freeing the ones they replace. */
  replace(layer: number, k: ort.Tensor, v: ort.Tensor, tokens: number): void {
    if (k.location !== 'gpu-buffer' || v.location !== 'gpu-buffer') throw new Error(`layer ${layer}: the full branch came back in ${k.location}/${v.location} memory, not on the GPU`);
    this.free(layer);
    this.layers[layer] = { k, v, tokens };
  }

  /** Frees every copy: the next step uploads from the JS cache. */
  clear(): void {
    for (let i = 0; i < this.layers.length; i++) this.free(i);
  }

  private free(layer: number): void {
    const copy = this.layers[layer];
    if (!copy) return;
    copy.k.dispose();
    copy.v.dispose();
    this.layers[layer] = undefined;
  }
}
