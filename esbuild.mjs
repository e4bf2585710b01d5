// Bundles the entry points into dist/. tsc only type-checks and emits the test build (out/).
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  // onnxruntime-node loads its native binding relative to its own files, so it stays in node_modules.
  external: ['onnxruntime-node', 'vscode'],
  logLevel: 'warning',
};

await build({ ...common, entryPoints: { cli: 'src/runtime/cli.ts' }, outdir: 'dist' });
