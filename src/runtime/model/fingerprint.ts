// A model's identity for cskv files and saved caches: the shape facts that decide the cache layout plus the
// raw bytes of every key and value projection (the factors are calibrated on exactly these).
import { createHash } from 'node:crypto';
import type { ModelConfig } from './config';
import type { ModelWeights } from './weights';

export function modelFingerprint(config: ModelConfig, weights: ModelWeights): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify([config.architecture, config.layers, config.hiddenSize, config.kvHeads, config.headDim]));
  for (let i = 0; i < config.layers; i++) {
    for (const kind of ['k', 'v']) {
      const name = `model.layers.${i}.self_attn.${kind}_proj.weight`;
      hash.update(name);
      hash.update(weights.readBytes(name));
    }
  }
  return hash.digest('hex').slice(0, 16);
}
