// The embedded default model: the project's own small code model (training/README.md), unpacked into models/house
// of the installed package. Commands use it when no --model is given.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEFAULT_MODEL_RELATIVE = path.join('models', 'house');

/** The package root: the nearest folder above `from` whose package.json is this project's. */
export function packageRoot(from: string = __dirname): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'cskv-code') return dir;
    } catch {
      // no package.json here, or not JSON: keep climbing
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The default model's folder when it is installed (has a config.json), else undefined. */
export function defaultModelDir(from?: string): string | undefined {
  const root = packageRoot(from);
  const dir = root && path.join(root, DEFAULT_MODEL_RELATIVE);
  return dir && fs.existsSync(path.join(dir, 'config.json')) ? dir : undefined;
}
