// Bundles the entry points into dist/. tsc only type-checks and emits the test build (out/).
//   dist/cli.js        the command line
//   dist/extension.js  the VS Code extension (vscode is provided by the editor)
//   dist/server.js     the sidecar the extension starts (everything bundled but onnxruntime-node)
//   dist/webgpuProbe.js the WebGPU probe the sidecar and the CLI run in a child process (webgpuAvailability.ts)
//   dist/runtimeEnv.js the environment the CLI's bin script starts itself again in (src/shared/runtimeEnv.ts)
//   dist/webview/*.js  the chat and memory webviews (browser bundles: marked, DOMPurify, highlight.js)
//   dist/webview/codicon.{css,ttf}  VS Code's icon font for the webviews' buttons (@vscode/codicons)
//   dist/native/*.node the native addon (native/build/Release), when it was built, for the sidecar and the CLI
import * as fs from 'node:fs';
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  // onnxruntime-node and webgpu (Dawn's binding, dawnAdapter.ts) load their native files relative to their own
  // package, so they stay in node_modules.
  external: ['onnxruntime-node', 'webgpu', 'vscode'],
  logLevel: 'warning',
};

await Promise.all([
  build({ ...common, entryPoints: { cli: 'src/cli/cli.ts' }, outdir: 'dist' }),
  build({ ...common, entryPoints: { extension: 'src/extension/main.ts', server: 'src/sidecar/server.ts' }, outdir: 'dist' }),
  build({ ...common, entryPoints: { webgpuProbe: 'src/runtime/backends/webgpuProbe.ts' }, outdir: 'dist' }),
  build({ ...common, entryPoints: { runtimeEnv: 'src/shared/runtimeEnv.ts' }, outdir: 'dist' }),
  build({
    entryPoints: { chat: 'media/chat.js', memory: 'media/memory.js' },
    outdir: 'dist/webview',
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    minify: true,
    sourcemap: false,
    legalComments: 'linked',
    logLevel: 'warning',
  }),
]);

// The icon font the webviews' buttons use, beside their bundles (the page's CSP allows fonts from there only).
for (const file of ['codicon.css', 'codicon.ttf']) fs.copyFileSync(`node_modules/@vscode/codicons/dist/${file}`, `dist/webview/${file}`);

// The addon is found beside the bundles at run time (src/runtime/backends/nativeAddon.ts).
const addon = 'native/build/Release/cskv_native.node';
if (fs.existsSync(addon)) {
  fs.mkdirSync('dist/native', { recursive: true });
  fs.copyFileSync(addon, 'dist/native/cskv_native.node');
}
