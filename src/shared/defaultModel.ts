// The embedded default model: the project's own small code model (training/README.md), unpacked into models/house
// of the installed package. Commands use it when no --model is given.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const DEFAULT_MODEL_RELATIVE = path.join('models', 'house');

/**
 * The package root: the nearest folder above `from` whose package.json names a package, when that package is this
 * project; undefined otherwise. The search never goes past the package it starts in, so nothing planted in a folder
 * above a checkout (a model, a native library) is taken for the package's own. A package.json without a name (a
 * {"type": "commonjs"} marker inside a build folder) is passed over.
 */
export function packageRoot(from: string = __dirname): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      let name: unknown;
      try {
        name = (JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown }).name;
      } catch {
        return undefined;
      }
      if (name !== undefined) return name === 'cskv-code' ? dir : undefined;
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
