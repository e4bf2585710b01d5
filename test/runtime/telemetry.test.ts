// Nothing of this product phones home or leaves identifiers behind: onnxruntime's telemetry (a device id and an
// event queue under ~/.cache/Microsoft/DeveloperTools/.onnxruntime/, uploads to Microsoft) is switched off before
// the library first loads, in the compiled modules and in the bundles the extension ships.
import assert from 'node:assert/strict';
import * as cp from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { modelFixture, repoRoot, tempDir } from '../support/paths';

/** Every file (under `dir`, recursively) a run with HOME=`home` left under its home and onnxruntime's /tmp cache. */
function leftBehind(home: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else found.push(path.relative(home, p));
    }
  };
  walk(home);
  return found;
}

/** Runs `args` with node under a fresh HOME and no ORT_DISABLE_TELEMETRY of the caller's; returns what it wrote there. */
function runUnderFreshHome(args: string[]): string[] {
  const home = tempDir();
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: path.join(home, '.cache') };
  delete env.ORT_DISABLE_TELEMETRY;
  const r = cp.spawnSync(process.execPath, args, { encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr.slice(0, 500)}`);
  return leftBehind(home).filter((f) => !f.startsWith(path.join('.cache', 'cskv-code')));
}

test('loading the CPU engine writes no device id or telemetry queue (compiled modules)', { timeout: 180_000 }, () => {
  const engine = path.join(repoRoot, 'out', 'src', 'runtime', 'backends', 'onnxEngine.js');
  const script = `require(${JSON.stringify(engine)}).OnnxEngine.load(${JSON.stringify(modelFixture('llama-v4'))}).then((e) => e.dispose());`;
  assert.deepEqual(runUnderFreshHome(['-e', script]), []);
});

test('the bundled command line writes none either (the order of modules in the bundle keeps the switch first)', { timeout: 180_000 }, (t) => {
  const cli = path.join(repoRoot, 'dist', 'cli.js');
  if (!fs.existsSync(cli)) return t.skip('dist/cli.js not built (npm run build)');
  // `auto` probes WebGPU in a child process (onnxruntime there too); the Vulkan driver it reaches may keep its shader
  // cache under ~/.cache (Mesa's lavapipe does): the driver's compiled shaders, no identifier, and not ours to switch off.
  const written = runUnderFreshHome([cli, 'logits', '--model', modelFixture('llama-v4'), '--prompt-ids', '1,2']);
  assert.deepEqual(written.filter((f) => !f.startsWith('.cache/mesa_shader_cache')), []);
});

/** A statement that loads onnxruntime-node (a type-only import loads nothing). */
const LOADS_ORT = /^\s*(import\s+(?!type\s)[^;]*?from\s+|export\s+[^;]*?from\s+|import\s+)'onnxruntime-node'|require\(\s*'onnxruntime-node'\s*\)/m;

test('onnxruntime-node is loaded only through src/runtime/onnx/ort.ts, which switches telemetry off first', () => {
  const ortModule = path.join(repoRoot, 'src', 'runtime', 'onnx', 'ort.ts');
  // These two name the package in strings (the layering rule's own self-test, and this test).
  const mentionOnly = [path.join(repoRoot, 'test', 'layering.test.ts'), path.join(repoRoot, 'test', 'runtime', 'telemetry.test.ts')];
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'fixtures') walk(p);
      } else if (/\.(ts|js|mjs)$/.test(p) && !p.endsWith('.d.ts') && p !== ortModule && !mentionOnly.includes(p)) {
        if (LOADS_ORT.test(fs.readFileSync(p, 'utf8'))) offenders.push(path.relative(repoRoot, p));
      }
    }
  };
  for (const top of ['src', 'bench', 'test']) walk(path.join(repoRoot, top));
  assert.deepEqual(offenders, [], 'import { ort } from src/runtime/onnx/ort instead');
  // The switch is imported before the library (import order is evaluation order, in tsc's output and in the bundle).
  const ort = fs.readFileSync(ortModule, 'utf8');
  const at = (spec: string): number => ort.search(new RegExp(`^(import|export)[^\\n]*'${spec}';$`, 'm'));
  assert.ok(at('./telemetryOff') >= 0 && at('onnxruntime-node') > at('./telemetryOff'), ort);
  assert.ok(LOADS_ORT.test(ort), 'the pattern recognises the one import that is allowed');
});
